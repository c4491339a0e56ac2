from prometheus_client import CollectorRegistry

from sentimon.metrics.definitions import (
    CONFIDENCE_BUCKETS,
    ENDPOINTS,
    ERROR_TYPES,
    LATENCY_BUCKETS,
    build_metrics,
    endpoint_label,
)
from sentimon.model.base import Int8Info, ModelInfo


def test_latency_buckets_have_the_slo_boundaries() -> None:
    assert 0.2 in LATENCY_BUCKETS and 0.3 in LATENCY_BUCKETS and 1.0 in LATENCY_BUCKETS


def test_confidence_buckets_span_a_third_to_one() -> None:
    assert CONFIDENCE_BUCKETS[0] < 0.34 and CONFIDENCE_BUCKETS[0] > 1 / 3
    assert CONFIDENCE_BUCKETS[-1] == 1.0
    assert 0.6 in CONFIDENCE_BUCKETS and 0.7 in CONFIDENCE_BUCKETS


def test_error_and_latency_series_exist_before_any_request(registry: CollectorRegistry) -> None:
    build_metrics(registry, process_collectors=False)
    for error_type in ERROR_TYPES:
        for endpoint in (*ENDPOINTS, "other"):
            labels = {"error_type": error_type, "endpoint": endpoint}
            assert registry.get_sample_value("sentiment_errors_total", labels) == 0.0
    for endpoint in ENDPOINTS:
        assert (
            registry.get_sample_value(
                "sentiment_prediction_duration_seconds_count", {"endpoint": endpoint}
            )
            == 0.0
        )
    assert registry.get_sample_value("sentiment_model_loaded") == 0.0


def info(labels: tuple[str, ...], revision: str, int8: Int8Info | None = None) -> ModelInfo:
    backend = "onnx-int8" if int8 else "transformers"
    return ModelInfo("emo", revision, backend, labels, 128, "tests", int8)


def test_model_series_are_created_for_the_models_own_labels(registry: CollectorRegistry) -> None:
    m = build_metrics(registry, process_collectors=False)
    m.init_model_series(info(("joy", "anger"), "r1"))
    for endpoint in ENDPOINTS:
        for label in ("joy", "anger"):
            assert (
                registry.get_sample_value(
                    "sentiment_predictions_total", {"sentiment": label, "endpoint": endpoint}
                )
                == 0.0
            )
    assert (
        registry.get_sample_value("sentiment_prediction_confidence_count", {"sentiment": "joy"})
        == 0.0
    )
    r1 = {
        "model": "emo",
        "revision": "r1",
        "backend": "transformers",
        "int8_recipe": "none",
        "int8_kernel": "none",
    }
    assert registry.get_sample_value("sentiment_model_info", r1) == 1.0
    m.init_model_series(info(("joy",), "r2"))
    assert registry.get_sample_value("sentiment_model_info", r1) is None


def test_model_info_names_the_int8_recipe_and_the_kernel_it_was_chosen_for(
    registry: CollectorRegistry,
) -> None:
    m = build_metrics(registry, process_collectors=False)
    m.init_model_series(info(("joy",), "r1", Int8Info("4-w7", 7, "no-vnni", "avx2", "recipe")))
    labels = {
        "model": "emo",
        "revision": "r1",
        "backend": "onnx-int8",
        "int8_recipe": "4-w7",
        "int8_kernel": "avx2",
    }
    assert registry.get_sample_value("sentiment_model_info", labels) == 1.0


def test_process_collectors_are_registered_on_request() -> None:
    registry = CollectorRegistry()
    build_metrics(registry)
    assert registry.get_sample_value("process_cpu_seconds_total") is not None


def test_endpoint_label_is_bounded() -> None:
    assert endpoint_label("/predict") == "/predict"
    assert endpoint_label("/predict/../etc/passwd") == "other"
