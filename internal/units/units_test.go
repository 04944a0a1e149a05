package units_test

import (
	"math"
	"testing"

	"github.com/propertywebbuilder/pwb/internal/units"
)

func TestBytes(t *testing.T) {
	for _, c := range []struct {
		n    int64
		want string
	}{
		{0, "0 B"},
		{1, "1 B"},
		{1023, "1023 B"},
		{1024, "1.0 KiB"},
		{1536, "1.5 KiB"},
		{100 * 1000, "97.7 KiB"},
		{1024*1024 - 52, "1023.9 KiB"},
		{1024*1024 - 1, "1.0 MiB"}, // rounds up to the next unit, never "1024.0 KiB"
		{1024 * 1024, "1.0 MiB"},
		{8_500_000, "8.1 MiB"},
		{5 << 30, "5.0 GiB"},
		{3 << 40, "3.0 TiB"},
		{1 << 50, "1.0 PiB"},
		{math.MaxInt64, "8.0 EiB"},
		{-1536, "-1.5 KiB"},
		{-5, "-5 B"},
		{math.MinInt64, "-8.0 EiB"},
	} {
		if got := units.Bytes(c.n); got != c.want {
			t.Errorf("Bytes(%d) = %q, want %q", c.n, got, c.want)
		}
	}
}

func TestCount(t *testing.T) {
	for _, c := range []struct {
		n    int64
		want string
	}{
		{0, "0"},
		{7, "7"},
		{999, "999"},
		{1000, "1,000"},
		{12345, "12,345"},
		{1_250_000, "1,250,000"},
		{-100, "-100"},
		{-1000, "-1,000"},
		{-123456, "-123,456"},
		{math.MaxInt64, "9,223,372,036,854,775,807"},
		{math.MinInt64, "-9,223,372,036,854,775,808"},
	} {
		if got := units.Count(c.n); got != c.want {
			t.Errorf("Count(%d) = %q, want %q", c.n, got, c.want)
		}
	}
}
