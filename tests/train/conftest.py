import pytest

from cinemagraph.train.config import register_train_configs


@pytest.fixture(scope="session", autouse=True)
def _store():
    register_train_configs()
