"""Studies: questions answered over many plans (hosting capacity; later reliability, a year).

They call ``controllers`` and ``forecasts`` and sit beside the runtime on the second floor; the
command line (``gridctl study ...``) stays a thin layer over them."""
