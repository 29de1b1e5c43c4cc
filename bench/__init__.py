"""The benchmark driver (bench.py) and its report (report.py); see bench/bench.sh."""
