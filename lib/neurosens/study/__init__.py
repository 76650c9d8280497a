"""The study itself: the zoo of runs, the paper's numbers, settings, FLOPs and CPU budget."""
