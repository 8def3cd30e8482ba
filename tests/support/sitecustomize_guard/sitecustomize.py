# Put on PYTHONPATH for subprocesses started by tests: installs the loopback guard (and, when a
# test asks for it, the crash hook) at interpreter start-up.
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
try:
    import crash_hook
    import loopback_guard

    loopback_guard.install()
    crash_hook.install()
except ImportError:  # botocore not importable in this interpreter: nothing to guard
    pass
