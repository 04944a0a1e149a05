package content

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"

	"github.com/propertywebbuilder/pwb/internal/dbq"
)

// MaxSlugLen is the longest slug of a page or property.
const MaxSlugLen = 80

var slugRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`)

// letters that do not decompose into an ASCII letter and accents.
var slugFold = map[rune]string{
	'ß': "ss", 'æ': "ae", 'Æ': "ae", 'œ': "oe", 'Œ': "oe", 'ø': "o", 'Ø': "o",
	'ł': "l", 'Ł': "l", 'đ': "d", 'Đ': "d", 'ð': "d", 'Ð': "d", 'þ': "th", 'Þ': "th", 'ı': "i",
}

// Slugify turns a title into a URL slug: lower-case ASCII letters, digits
// and single hyphens, at most MaxSlugLen long, accents dropped ("Château
// d'Eau" -> "chateau-d-eau"). It returns "" when the title has nothing usable.
func Slugify(title string) string {
	var b strings.Builder
	hyphen := false
	for _, r := range norm.NFKD.String(title) {
		if unicode.Is(unicode.Mn, r) {
			continue // an accent separated from its letter by NFKD
		}
		s := ""
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			s = string(r)
		case r >= 'A' && r <= 'Z':
			s = string(r + 'a' - 'A')
		default:
			s = slugFold[r]
		}
		if s == "" {
			hyphen = b.Len() > 0
			continue
		}
		if hyphen {
			b.WriteByte('-')
			hyphen = false
		}
		b.WriteString(s)
	}
	return truncateSlug(b.String(), MaxSlugLen)
}

// isSlug reports whether s can be a slug; anything else in a URL names
// nothing, and is not worth a query (PostgreSQL rejects a NUL byte).
func isSlug(s string) bool { return len(s) <= MaxSlugLen && slugRE.MatchString(s) }

// truncateSlug cuts s to n bytes (it is ASCII) without leaving a trailing
// hyphen.
func truncateSlug(s string, n int) string {
	if len(s) > n {
		s = s[:n]
	}
	return strings.TrimRight(s, "-")
}

const selectSimilarPropertySlugs = `SELECT slug FROM properties
	WHERE website_id = $1 AND slug LIKE $2`

// uniquePropertySlug returns base, or base-2, base-3 ... whichever is the
// first one free in the website, all within MaxSlugLen. A concurrent create
// can still take it first; the unique constraint catches that and the
// caller retries.
func uniquePropertySlug(ctx context.Context, q dbq.Reader, websiteID int64, base string) (string, error) {
	// Every candidate starts with this prefix, even when a long base is
	// cut to make room for a suffix of up to six digits. It holds only
	// [a-z0-9-], none of which LIKE treats specially.
	prefix := base[:min(len(base), MaxSlugLen-8)]
	rows, err := q.Query(ctx, selectSimilarPropertySlugs, websiteID, prefix+"%")
	if err != nil {
		return "", fmt.Errorf("reading similar slugs: %w", err)
	}
	taken := map[string]bool{}
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			rows.Close()
			return "", fmt.Errorf("reading similar slugs: %w", err)
		}
		taken[s] = true
	}
	if err := rows.Err(); err != nil {
		return "", fmt.Errorf("reading similar slugs: %w", err)
	}
	if !taken[base] {
		return base, nil
	}
	for n := 2; ; n++ {
		suffix := "-" + strconv.Itoa(n)
		s := truncateSlug(base, MaxSlugLen-len(suffix)) + suffix
		if !taken[s] {
			return s, nil
		}
	}
}
