"""listenwell streams: the Kafka contract (records, topics) and the Faust topology with its pure core."""
