package cli

import (
	"errors"
	"fmt"
	"testing"

	"github.com/propertywebbuilder/pwb/internal/account"
	"github.com/propertywebbuilder/pwb/internal/content"
	"github.com/propertywebbuilder/pwb/internal/journal"
	"github.com/propertywebbuilder/pwb/internal/mover"
	"github.com/propertywebbuilder/pwb/internal/registry"
	"github.com/propertywebbuilder/pwb/internal/shard"
	"github.com/propertywebbuilder/pwb/internal/tenant"
)

// Every error kind gets its exit code from exitCode alone.
func TestExitCode_ByKind(t *testing.T) {
	for _, c := range []struct {
		name string
		err  error
		want int
	}{
		{"success", nil, ExitOK},
		{"a mistake in the call", usagef("--email is required"), ExitUsage},
		{"cobra's own usage error", errors.New("unknown flag: --bogus"), ExitUsage},
		{"an invalid value", fmt.Errorf("creating tenant: %w subdomain %q: reserved", registry.ErrInvalid, "www"), ExitUsage},
		{"an invalid password", fmt.Errorf("%w password: too short", account.ErrInvalid), ExitUsage},
		{"invalid fields", &content.InvalidError{Fields: map[string]string{"title": "Title is required."}}, ExitUsage},
		{"not found", fmt.Errorf("tenant %q: %w", "nobody", registry.ErrNotFound), ExitFailed},
		{"a name taken", fmt.Errorf("%w: ann@example.com", account.ErrConflict), ExitFailed},
		{"an unfinished move", journal.UnfinishedError(journal.Move{ID: 3}), ExitFailed},
		{"a move run elsewhere", journal.Refusal(mover.ErrBusy), ExitFailed},
		// The refusal decides, not the invalid value behind it: nothing
		// in the call was wrong.
		{"refused because of an invalid value", journal.Refusal(registry.ErrInvalid), ExitFailed},
		{"unavailable", fmt.Errorf("shard %q: %w", "shard_1", shard.ErrBusy), ExitFailed},
		{"writes paused", &tenant.MovedError{WebsiteID: 1, From: "a", To: "b"}, ExitFailed},
		{"any other failure", errors.New("disk full"), ExitFailed},
	} {
		if got := exitCode(c.err); got != c.want {
			t.Errorf("%s: exitCode(%v) = %d, want %d", c.name, c.err, got, c.want)
		}
	}
}
