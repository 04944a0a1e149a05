package cli

// orDash writes an empty value as a dash in tables.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
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
