"""The real-time controller: a bundle's planner under a deadline in a fixed-rate loop.

* :mod:`.factory`: a bundle's planner backend (:mod:`boom_control.planner.backends`: torch,
  TorchScript, CUDA graphs or ONNX Runtime; iterations under a deadline in
  :mod:`boom_control.planner.anytime`)
* :mod:`.clock`: precise sleeping, absolute-deadline ticks
* :mod:`.safety`: clipping, NaN/Inf hold, stale-observation damping
* :mod:`.loop`: the control loop (``boom control``)
* :mod:`.report`: live status and the end-of-run summary
"""
