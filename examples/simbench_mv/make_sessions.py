"""Write sessions.csv: two weeks of EV sessions at the example's three sites (seeded, reproducible).

    python examples/simbench_mv/make_sessions.py

Drawn once by gridctl's session generator (forecasts.ev_generator, by site type) on the model with
this folder's devices file, and written in ACN-Data columns (forecasts.ev_csv). The CSV is the
shipped data; this script says where it came from.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from forecasts.ev_csv import write_ev_sessions_csv
from forecasts.ev_generator import generate_sessions
from network_models import load_model

HERE = Path(__file__).parent
FIRST_DAY, DAYS, SEED = "2026-07-06", 14, 2016  # Monday 6 to Sunday 19 July 2026


def main() -> None:
    model = load_model("simbench:1-MV-urban--0-sw", devices=HERE / "simbench_mv.devices.yaml")
    start = pd.Timestamp(FIRST_DAY, tz=model.site.timezone)
    end = start + pd.Timedelta(days=DAYS)
    # the generator also yields sessions plugged in before start (from its look-back days):
    # keep those that arrive inside the fortnight
    sessions = [s for s in generate_sessions(model.registry.ev_sites, start, end, SEED)
                if start <= s.arrival < end]
    path = write_ev_sessions_csv(sessions, HERE / "sessions.csv")
    print(f"{len(sessions)} sessions from {FIRST_DAY} for {DAYS} days -> {path}")


if __name__ == "__main__":
    main()
