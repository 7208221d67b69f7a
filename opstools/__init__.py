"""Operator tools: they read and act on a running deployment from outside, over Kafka.

``deadletters`` lists, shows and replays dead letters (``python -m opstools.deadletters``);
``statusreader`` follows the public status stream into per-case timelines.
"""
