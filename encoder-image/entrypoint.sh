#!/bin/sh
# The same commands local mode runs: `kubecast <component> [options]`. exec, so that the
# component is PID 1's child-free replacement and receives SIGTERM directly.
set -e
exec kubecast "$@"
