"""The embedded demo: devcluster, the controller, a two-version app with traffic, and a live view.

`run_demo(DemoOptions(...), stop_event)` runs one scenario (`SCENARIOS`) and returns the exit code
of `coalmine demo`.
"""

from coalmine.demo.runner import DemoError, DemoOptions, run_demo
from coalmine.demo.scenarios import SCENARIOS

__all__ = ["SCENARIOS", "DemoError", "DemoOptions", "run_demo"]
