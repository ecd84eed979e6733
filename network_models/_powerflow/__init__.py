"""What :mod:`network_models.powerflow` runs on, private as power-grid-model keeps ``_core``.

- ``injections``: the per-step input (``TimeSeriesInjections``) and its checks against a net;
- ``device_injections``: that input from per-device values (registry ids and signs);
- ``results``: the engines, the per-step result (``TimeSeriesResult``) and its buffers;
- ``pandapower_engine``: ``runpp`` step by step on a copy of the net;
- ``pgm_topology``, ``pgm_branches``, ``pgm_conversion``: pandapower net -> power-grid-model input;
- ``pgm_batch``: one power-grid-model batch per series (update data, output -> results);
- ``pgm_switching``: one conversion, many switch states (branch-end states as update data).

Import the public names from ``network_models.powerflow``; these modules may change shape.
"""
