package web

import (
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/propertywebbuilder/pwb/internal/ops"
)

// BenchmarkOverview times the dashboard's work on a snapshot of n shards
// (counting states, filtering, ordering worst first, one page of cards),
// quoted in docs/benchmarks.md:
//
//	go test -run '^$' -bench Overview ./internal/web/
func BenchmarkOverview(b *testing.B) {
	for _, n := range []int{100, 1000} {
		b.Run(fmt.Sprintf("shards=%d", n), func(b *testing.B) {
			snap := ops.Snapshot{At: time.Now()}
			health := []string{ops.Green, ops.Green, ops.Green, ops.Amber, ops.Red}
			for i := range n {
				snap.Shards = append(snap.Shards, ops.Card{Name: fmt.Sprintf("shard_%d", i), Order: i, Configured: true,
					Health: health[i%len(health)], CheckedAt: snap.At})
			}
			for b.Loop() {
				overview(url.Values{}, snap)
			}
		})
	}
}
