"""The sample types the collector's consumers read: either path's objects.

A validated sample is a `collector.fastpath` Struct (the common case) or, when
the fast path stepped aside, a `collector.contract` pydantic model. Both have the
same fields with the same types, so the line protocol, the summaries and the rules
read either; mypy checks every attribute they read against both.
"""

from __future__ import annotations

from collector import contract, fastpath

Sample = contract.Sample | fastpath.Sample
Battery = contract.Battery | fastpath.Battery
Wifi = contract.Wifi | fastpath.Wifi
Connectivity = contract.Connectivity | fastpath.Connectivity
