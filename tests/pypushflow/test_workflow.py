# End-to-end pypushflow workflows on Fiber pools.
#
# SPDX-License-Identifier: LGPL-2.1-or-later

import psutil
import pytest

from pypushflow.Workflow import Workflow
from pypushflow.StopActor import StopActor
from pypushflow.StartActor import StartActor
from pypushflow.PythonActor import PythonActor
from pypushflow.ThreadCounter import ThreadCounter

import fiber_glib.pushflow

REGISTERED = fiber_glib.pushflow.register()


class AddWorkflow(Workflow):
    """start → add (python actor) → add again → stop"""

    def __init__(self, name):
        super().__init__(name)
        ctr = ThreadCounter(parent=self)
        self.startActor = StartActor(parent=self, thread_counter=ctr)
        self.add1 = PythonActor(parent=self, script="pypushflow.tests.tasks.pythonActorAdd.py",
                                name="Add 1", thread_counter=ctr)
        self.add2 = PythonActor(parent=self, script="pypushflow.tests.tasks.pythonActorAdd.py",
                                name="Add 2", thread_counter=ctr)
        self.stopActor = StopActor(parent=self, thread_counter=ctr)
        self.startActor.connect(self.add1)
        self.add1.connect(self.add2)
        self.add2.connect(self.stopActor)


class HelloWorkflow(Workflow):
    def __init__(self, name):
        super().__init__(name)
        ctr = ThreadCounter(parent=self)
        self.startActor = StartActor(parent=self, thread_counter=ctr)
        self.pythonActor = PythonActor(parent=self,
                                       script="pypushflow.tests.tasks.pythonActorTest.py",
                                       name="Python Actor Test", thread_counter=ctr)
        self.stopActor = StopActor(parent=self, thread_counter=ctr)
        self.startActor.connect(self.pythonActor)
        self.pythonActor.connect(self.stopActor)


class ErrorWorkflow(Workflow):
    """A python actor that raises; the workflow's error path reaches the stop actor."""

    def __init__(self, name):
        super().__init__(name)
        ctr = ThreadCounter(parent=self)
        self.startActor = StartActor(parent=self, thread_counter=ctr)
        self.pythonActor = PythonActor(parent=self,
                                       script="pypushflow.tests.tasks.pythonErrorHandlerTest.py",
                                       name="Error Actor", errorHandler=self,
                                       thread_counter=ctr)
        self.stopActor = StopActor(parent=self, thread_counter=ctr)
        self.startActor.connect(self.pythonActor)
        self.pythonActor.connect(self.stopActor)
        self.connectOnError(self.stopActor)


@pytest.fixture(autouse=True)
def no_dangling_children():
    me = psutil.Process()
    before = {c.pid for c in me.children(recursive=True)}
    yield
    dangling = [c for c in me.children(recursive=True) if c.pid not in before]
    for c in dangling:
        try:
            c.kill()
        except psutil.NoSuchProcess:
            pass
    assert not dangling, "dangling child processes: %s" % dangling


POOL_TYPES = ["fiber-process", "fiber-ndprocess"]


@pytest.mark.parametrize("scaling", [False, True])
@pytest.mark.parametrize("pool_type", POOL_TYPES)
def test_hello_workflow(pool_type, scaling):
    assert pool_type in REGISTERED
    out = HelloWorkflow("hello").run({"name": "Jerry"}, timeout=60, pool_type=pool_type,
                                     scaling_workers=scaling, max_workers=2)
    assert out is not None
    assert out["reply"] == "Hello Jerry!"


@pytest.mark.parametrize("pool_type", POOL_TYPES)
def test_add_workflow(pool_type):
    out = AddWorkflow("add").run({"value": 1}, timeout=60, pool_type=pool_type,
                                 scaling_workers=False, max_workers=-1)
    assert out is not None
    assert out["value"] == 3


@pytest.mark.parametrize("pool_type", POOL_TYPES)
def test_error_workflow(pool_type):
    out = ErrorWorkflow("error").run({"name": "Tom"}, timeout=60, pool_type=pool_type,
                                     scaling_workers=False, max_workers=1)
    assert out is not None
    assert "WorkflowException" in out
    assert "pythonErrorHandlerTest" in "".join(out["WorkflowException"]["traceBack"])
