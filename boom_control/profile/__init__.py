"""Planning-latency profiler: live sweeps of a bundle and reports on control-run logs.

* :mod:`.stats` percentiles, histograms and tables of timings (numpy only);
* :mod:`.sweep` live measurement of every planning stage over samples x iterations;
* :mod:`.budget` the largest planner settings whose p99 fits a latency budget;
* :mod:`.report` statistics of a ``boom control`` telemetry log;
* :mod:`.load` CPU load from other processes during a measurement;
* :mod:`.plots` histograms, p99 heat map and control-run timeline (matplotlib, Agg).

The command line is ``boom profile BUNDLE`` and ``boom profile report RUN_LOG``.
"""
