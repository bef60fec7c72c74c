"""Triggerline side by side with a peer, Benthos v4.27.0 (MIT), on the same local broker.

`benthos.py` builds a slim Benthos into `.local/peers/` on first use (Go from the module proxy,
every Go cache under that folder) and runs it; `configs.py` and `bloblang.py` write its configs.
One module per pairing, each measuring Benthos (the baseline) and Triggerline in one run:

    python -m benchmarks.peers.ingest       # http_server -> kafka_franz against ingest
    python -m benchmarks.peers.processing   # kafka_franz -> bloblang -> kafka_franz
    python -m benchmarks.peers.delivery     # kafka_franz -> http_client against dispatchers

Only these benchmarks use Go or Benthos; nothing that `make run` or the tests start does.
"""
