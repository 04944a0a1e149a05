package changes

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/jackc/pglogrepl"
)

// LSN is a position in a server's write-ahead log.
type LSN = pglogrepl.LSN

// ParseLSN reads an LSN in PostgreSQL's text form, such as "0/16B3748".
func ParseLSN(s string) (LSN, error) { return pglogrepl.ParseLSN(s) }

// Prefix starts the name of every publication, replication slot and marker
// of a move, so a sweep can find what moves left behind.
const Prefix = "pwb_move_"

// PublicationName is the name of move moveID's publication on its source
// database: pwb_move_<id>.
func PublicationName(moveID int64) string { return Prefix + strconv.FormatInt(moveID, 10) }

// SlotName is the name of move moveID's replication slot on its source
// server: pwb_move_<id>.
func SlotName(moveID int64) string { return Prefix + strconv.FormatInt(moveID, 10) }

// VerifySlotName is the name of the temporary slot move moveID creates to
// take a consistent point for verification: pwb_move_<id>_verify. Being
// temporary, it goes away with the connection that made it; MoveOf does not
// recognise it.
func VerifySlotName(moveID int64) string { return SlotName(moveID) + "_verify" }

// MarkerPrefix is the logical message prefix of move moveID's markers:
// pwb_move_<id>.
func MarkerPrefix(moveID int64) string { return Prefix + strconv.FormatInt(moveID, 10) }

// MoveOf returns the move a publication or slot name belongs to: the id of
// pwb_move_<id>, written as PublicationName and SlotName write it. Any other
// name reports false.
func MoveOf(name string) (int64, bool) {
	rest, ok := strings.CutPrefix(name, Prefix)
	if !ok {
		return 0, false
	}
	id, err := strconv.ParseInt(rest, 10, 64)
	if err != nil || id <= 0 || strconv.FormatInt(id, 10) != rest {
		return 0, false
	}
	return id, true
}

// plainName matches the names this package creates and accepts for slots
// and publications: they are written into replication commands unquoted.
var plainName = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

func checkName(kind, name string) error {
	if !plainName.MatchString(name) {
		return fmt.Errorf("%s name %q: use lower-case letters, digits and underscores only (at most 63)", kind, name)
	}
	return nil
}

// quoteLiteral writes s as an SQL string literal.
func quoteLiteral(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

// SQLSTATE codes this package tells apart.
const (
	codeDuplicateObject = "42710"
	codeUndefinedObject = "42704"
	codeObjectInUse     = "55006" // a replication slot held by another process
)
