"""nerve-edge benchmarks."""
