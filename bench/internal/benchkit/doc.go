// Package benchkit is what the benchmark programs share: a coligo server
// process on free ports, the sample image pushed to the test registry, and
// a load generator that reports throughput and latency percentiles.
package benchkit
