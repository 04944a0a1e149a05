// Package cli is the `pwb` command line. It is the only layer that reads
// flags and the environment; the packages below take plain values. Commands
// write to injected writers so tests can run them in-process, and every
// failure ends as one line on stderr with exit code 1 (refused or failed) or 2
// (wrong usage), never a stack trace.
package cli
