"""Many processes, dynos and hosts through Redis: fan-in of streams, the sampler lease, the agent's part."""
