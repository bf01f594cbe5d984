"""Workers: results, progress, failures and cancel arrive as signals on the UI thread; shutdown joins."""

from __future__ import annotations

import threading
import time
from collections.abc import Generator

import pytest
from PySide6.QtCore import QThread

from segstudio.core.tasks import Cancelled, CancelToken
from segstudio.gui.workers import WorkerPool
from tests.gui.conftest import dangling


@pytest.fixture
def pool(qtbot):
    p = WorkerPool()
    yield p
    p.shutdown()


def test_a_function_runs_off_the_ui_thread_and_its_result_arrives_on_it(qtbot, pool: WorkerPool) -> None:
    ui = threading.current_thread()
    seen: dict[str, object] = {}

    def work(cancel: CancelToken) -> int:
        seen["thread"] = threading.current_thread()
        return 42

    results: list[object] = []

    def on_finished(value: object) -> None:
        seen["callback thread"] = threading.current_thread()
        results.append(value)

    task = pool.start("answer", work, on_finished=on_finished)
    qtbot.waitUntil(lambda: results == [42], timeout=5000)
    assert seen["thread"] is not ui and seen["callback thread"] is ui
    assert task.outcome == "finished"


def test_a_generator_reports_progress_then_its_return_value(qtbot, pool: WorkerPool) -> None:
    def work(cancel: CancelToken) -> Generator[int, None, str]:
        yield from range(5)
        return "done"

    progress: list[object] = []
    task = pool.start("count", work, on_progress=progress.append)
    with qtbot.waitSignal(task.finished, timeout=5000) as blocker:
        pass
    assert blocker.args == ["done"]
    qtbot.waitUntil(lambda: progress == [0, 1, 2, 3, 4], timeout=5000)


def test_reporting_work_sends_progress_from_a_callback_on_the_ui_thread(qtbot, pool: WorkerPool) -> None:
    ui = threading.current_thread()
    seen: list[tuple[object, threading.Thread]] = []

    def work(cancel: CancelToken, report) -> str:
        for i in range(3):
            report(i)
        return "done"

    task = pool.start("callback", work, on_progress=lambda e: seen.append((e, threading.current_thread())),
                      reporting=True)
    with qtbot.waitSignal(task.finished, timeout=5000) as blocker:
        pass
    assert blocker.args == ["done"]
    qtbot.waitUntil(lambda: len(seen) == 3, timeout=5000)
    assert [e for e, _ in seen] == [0, 1, 2] and all(t is ui for _, t in seen)


def test_a_failure_becomes_a_message(qtbot, pool: WorkerPool) -> None:
    def work(cancel: CancelToken) -> None:
        raise ValueError("the file is broken")

    task = pool.start("fail", work)
    with qtbot.waitSignal(task.failed, timeout=5000) as blocker:
        pass
    assert blocker.args == ["the file is broken"] and task.outcome == "failed"


def test_cancel_stops_a_generator_between_steps(qtbot, pool: WorkerPool) -> None:
    steps: list[int] = []

    def work(cancel: CancelToken) -> Generator[int, None, None]:
        for i in range(1000):
            steps.append(i)
            time.sleep(0.005)
            yield i

    task = pool.start("long", work)
    qtbot.waitUntil(lambda: len(steps) > 2, timeout=5000)
    with qtbot.waitSignal(task.cancelled, timeout=5000):
        task.cancel()
    assert len(steps) < 1000 and task.outcome == "cancelled"


def test_work_that_raises_cancelled_itself_is_cancelled(qtbot, pool: WorkerPool) -> None:
    def work(cancel: CancelToken) -> None:
        raise Cancelled("stopped")

    task = pool.start("self-cancel", work)
    with qtbot.waitSignal(task.cancelled, timeout=5000) as blocker:
        pass
    assert blocker.args == ["stopped"]


def test_shutdown_cancels_and_joins_every_thread(qtbot) -> None:
    pool = WorkerPool()

    def work(cancel: CancelToken) -> None:
        while not cancel.wait(0.01):
            pass
        cancel.raise_if_cancelled()

    tasks = [pool.start(f"wait {i}", work) for i in range(3)]
    assert all(t.is_running() for t in tasks)
    assert pool.shutdown(timeout_ms=5000)
    assert not any(t.is_running() for t in tasks)
    with pytest.raises(RuntimeError):
        pool.start("late", work)


def test_the_dangling_thread_check_sees_a_running_thread(qtbot) -> None:
    stop = threading.Event()

    class Sleeper(QThread):
        def run(self) -> None:
            stop.wait(5)

    t = Sleeper()
    t.setObjectName("sleeper")
    t.start()
    try:
        assert dangling([t]) == ["sleeper"]
    finally:
        stop.set()
        t.wait()
    assert dangling([t]) == []
