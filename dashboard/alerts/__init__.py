"""Alert rules evaluated on each sample, and the events their transitions become."""
