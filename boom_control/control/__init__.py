"""The real-time controller: planner backends, anytime MPPI, the fixed-rate loop, safety.

* :mod:`.backends` / :mod:`.factory`: MPPI on torch, TorchScript, CUDA graphs or ONNX Runtime
* :mod:`.anytime`: iterations under a deadline, the planning thread
* :mod:`.clock`: precise sleeping, absolute-deadline ticks
* :mod:`.safety`: clipping, NaN/Inf hold, stale-observation damping
* :mod:`.loop`: the control loop (``boom control``)
* :mod:`.report`: live status and the end-of-run summary
"""
