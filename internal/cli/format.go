package cli

import (
	"fmt"
	"strconv"
)

// orDash writes an empty value as a dash in tables.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// count writes n with thousands separated by commas.
func count(n int64) string {
	s := strconv.FormatInt(n, 10)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// bytesText writes a size in decimal units: 1.2 MB.
func bytesText(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	v, exp := float64(n)/unit, 0
	for v >= unit && exp < 3 {
		v /= unit
		exp++
	}
	return fmt.Sprintf("%.1f %cB", v, "kMGT"[exp])
}

// tableErrorWidth is the most of an error a table cell shows: a table is
// read on a screen, and one long error would push every row's columns past
// its edge. --json gives the whole error.
const tableErrorWidth = 60

// cellError shortens an error for a table cell to tableErrorWidth
// characters.
func cellError(msg string) string {
	r := []rune(msg)
	if len(r) <= tableErrorWidth {
		return msg
	}
	return string(r[:tableErrorWidth-1]) + "…"
}
