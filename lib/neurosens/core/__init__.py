"""Foundations every layer uses: paths, profiles (pure data), the run config, the runtime
(device, precision, memory format), data-parallel helpers and CPU facts."""
