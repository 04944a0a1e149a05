// Package units writes sizes and counts the one way the command line and the
// web both show them, so the same move reads the same in a terminal and on
// the platform admin: sizes in binary (IEC) units, the ones PostgreSQL's
// sizes and settings are counted in (1 KiB = 1,024 bytes), and counts with
// their thousands separated by commas.
package units

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// binary are the units past bytes, each 1,024 times the one before.
var binary = [...]string{"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}

// Bytes writes a size of n bytes: whole bytes below 1 KiB, else one decimal
// in the largest unit that keeps it at 1 or more: 512 B, 1.5 KiB, 8.1 MiB.
func Bytes(n int64) string {
	sign, m := "", uint64(n)
	if n < 0 {
		sign, m = "-", uint64(-(n+1))+1 // -n overflows for the smallest int64
	}
	if m < 1024 {
		return fmt.Sprintf("%s%d B", sign, m)
	}
	v, unit := float64(m)/1024, 0
	// Moves up on the rounded value, so 1,048,575 bytes is 1.0 MiB, not
	// 1024.0 KiB.
	for math.Round(v*10)/10 >= 1024 && unit < len(binary)-1 {
		v /= 1024
		unit++
	}
	return fmt.Sprintf("%s%.1f %s", sign, v, binary[unit])
}

// Count writes n with its thousands separated by commas: 1,250,000.
func Count(n int64) string {
	s := strconv.FormatInt(n, 10)
	digits := strings.TrimPrefix(s, "-")
	var b strings.Builder
	b.WriteString(s[:len(s)-len(digits)])
	for i, d := range digits {
		if i > 0 && (len(digits)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(d)
	}
	return b.String()
}
