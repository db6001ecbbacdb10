"""Training: datasets in a family's exact prompt and answer format, rewards, preference pairs, trainers.

Work in progress for issue [6]; only :mod:`vidspan.train.rewards` exists so far.
"""
