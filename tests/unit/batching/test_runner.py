import asyncio
import random
import threading
import time
from collections.abc import Sequence

import pytest
from prometheus_client import CollectorRegistry

from sentimon.batching.runner import InferenceRunner
from sentimon.errors import InferenceFailed, InferenceTimeout, Overloaded
from sentimon.metrics.definitions import Metrics, build_metrics
from sentimon.model.base import Prediction
from tests.fakes import BlockingModel, FailingModel, FakeModel, fake_prediction


@pytest.fixture
def metrics(registry: CollectorRegistry) -> Metrics:
    return build_metrics(registry, process_collectors=False)


class ThreadRecordingModel(FakeModel):
    def __init__(self) -> None:
        super().__init__()
        self.threads: set[str] = set()

    def predict(self, texts: Sequence[str]) -> list[Prediction]:
        self.threads.add(threading.current_thread().name)
        return super().predict(texts)


async def test_each_caller_gets_its_own_result_off_the_event_loop(metrics: Metrics) -> None:
    model = ThreadRecordingModel()
    runner = InferenceRunner(model, metrics, max_queue_size=1000, timeout_s=5)
    rng = random.Random(7)
    payloads = [
        [f"text {rng.random()} {w}" for w in rng.sample(["love", "hate", "meh"], 2)]
        for _ in range(50)
    ]
    results = await asyncio.gather(*(runner.predict(p) for p in payloads))
    for payload, result in zip(payloads, results, strict=True):
        assert result == [fake_prediction(t) for t in payload]
    assert model.threads and all(name.startswith("sentimon-infer") for name in model.threads)
    assert threading.current_thread().name not in model.threads
    assert runner.admitted == 0
    runner.close()


async def test_stage_metrics_are_recorded(metrics: Metrics, registry: CollectorRegistry) -> None:
    runner = InferenceRunner(FakeModel(), metrics, max_queue_size=10, timeout_s=5)
    await runner.predict(["a b c", "d"])
    assert registry.get_sample_value("sentiment_batch_size_count") == 1
    assert registry.get_sample_value("sentiment_batch_size_sum") == 2
    assert registry.get_sample_value("sentiment_input_tokens_sum") == 5 + 3
    assert registry.get_sample_value("sentiment_inference_seconds_count") == 1
    assert registry.get_sample_value("sentiment_queue_wait_seconds_count") == 1
    assert registry.get_sample_value("sentiment_queue_depth") == 0
    runner.close()


async def test_a_full_queue_is_refused_at_once(
    metrics: Metrics, registry: CollectorRegistry
) -> None:
    model = BlockingModel()
    runner = InferenceRunner(model, metrics, max_queue_size=3, timeout_s=5)
    await runner.predict(["warm-up"])
    busy = asyncio.ensure_future(runner.predict(["one", "two"]))
    await asyncio.to_thread(model.started.wait, 5)
    assert registry.get_sample_value("sentiment_queue_depth") == 2
    started = time.perf_counter()
    with pytest.raises(Overloaded) as info:
        await runner.predict(["three", "four"])
    assert time.perf_counter() - started < 0.1
    assert info.value.message == "server busy: 2 texts queued, limit 3; retry shortly"
    assert info.value.headers == {"Retry-After": "1"}
    model.release.set()
    await busy
    assert await runner.predict(["fits"]) == [fake_prediction("fits")]
    runner.close()


async def test_a_caller_past_its_deadline_gets_a_timeout_and_its_job_is_skipped(
    metrics: Metrics,
) -> None:
    model = BlockingModel()
    runner = InferenceRunner(model, metrics, max_queue_size=10, timeout_s=0.2)
    await runner.predict(["warm-up"])
    first = asyncio.ensure_future(runner.predict(["blocks the worker"]))
    await asyncio.to_thread(model.started.wait, 5)
    with pytest.raises(InferenceTimeout, match="no result within 0.2 s"):
        await runner.predict(["waits behind it"])
    model.release.set()
    with pytest.raises(InferenceTimeout):
        await first
    await asyncio.sleep(0.1)
    assert ["waits behind it"] not in model.calls
    assert runner.admitted == 0
    runner.close()


async def test_a_failed_call_fails_its_caller_and_the_worker_survives(metrics: Metrics) -> None:
    runner = InferenceRunner(FailingModel(), metrics, max_queue_size=10, timeout_s=5)
    with pytest.raises(InferenceFailed, match=r"inference failed \(RuntimeError\)"):
        await runner.predict(["boom", "fine"])
    assert await runner.predict(["fine"]) == [fake_prediction("fine")]
    runner.close()


def test_misconfiguration_fails_early(metrics: Metrics) -> None:
    with pytest.raises(ValueError, match="max_queue_size must be >= 1, got 0"):
        InferenceRunner(FakeModel(), metrics, max_queue_size=0, timeout_s=1)
    with pytest.raises(ValueError, match="timeout_s must be > 0, got 0"):
        InferenceRunner(FakeModel(), metrics, max_queue_size=1, timeout_s=0)
