"""What every process must agree on (interval, pause, alert rules, events, samples), kept
either in this process (embedded) or in Redis (shared), behind one interface; and the
ordered start and stop of a process's background parts."""
