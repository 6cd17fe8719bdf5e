"""Stage one: read the host. Collectors with their metadata, rates, cgroup limits, the sampler."""
