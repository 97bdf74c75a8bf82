"""listenwell streams: the Kafka contract, the Faust topology and its pure core."""
