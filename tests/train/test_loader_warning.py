"""The warning for a GPU run left with the default ``trainer.num_workers`` of 0."""
from cinemagraph.train.loop import loader_warning


def test_cuda_without_workers_is_warned_with_a_worker_count():
    message = loader_warning("cuda", 0, 16)
    assert message is not None
    assert "trainer.num_workers=15" in message


def test_no_warning_with_workers_or_on_the_cpu():
    assert loader_warning("cuda", 15, 16) is None
    assert loader_warning("cpu", 0, 2) is None


def test_unknown_cpu_count_still_names_a_positive_count():
    assert "trainer.num_workers=1" in loader_warning("cuda", 0, None)
