package web

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/propertywebbuilder/pwb/internal/account"
	"github.com/propertywebbuilder/pwb/internal/audit"
	"github.com/propertywebbuilder/pwb/internal/throttle"
)

// Sign-ins to the site admin and to the platform admin are counted the
// same way, on primary, before the password is checked: per account
// (normalised email, whatever site it is tried on) and per client address.
// An attempt past either limit is refused without a password check, and
// locks its account or address for a short while that doubles with each
// further lock. A sign-in that succeeds takes back only its own attempt.

// signIn is one counted sign-in attempt.
type signIn struct {
	keys []throttle.Key
}

// countSignIn counts a sign-in attempt of email from the request's client.
// When the attempt is refused it sets Retry-After and returns what the form
// says; the caller must not check the password then.
func (s *Server) countSignIn(w http.ResponseWriter, r *http.Request, email string, websiteID int64, tenant string) (signIn, string, error) {
	ri := requestFrom(r.Context())
	addr := throttle.Counted{Key: throttle.Key{Kind: throttle.SignInAddress, Subject: throttle.AddressSubject(ri.Client)}, Rule: s.signInAddress}
	keys := []throttle.Counted{addr}
	// An address that is not one cannot be an account: only the client's
	// address counts.
	if e, err := account.NormalizeEmail(email); err == nil {
		keys = append(keys, throttle.Counted{Key: throttle.Key{Kind: throttle.SignInAccount, Subject: e}, Rule: s.signInAccount})
	}
	d, err := throttle.Take(r.Context(), s.accounts, keys...)
	if err != nil {
		return signIn{}, "", err
	}
	for _, l := range d.Locked {
		s.auditLock(r.Context(), ri.Client.String(), l, websiteID, tenant)
	}
	if !d.Allowed {
		return signIn{}, tooManySignIns(w, d), nil
	}
	var a signIn
	for _, k := range keys {
		a.keys = append(a.keys, k.Key)
	}
	return a, "", nil
}

// succeeded gives back the attempt of a sign-in whose password was right,
// and nothing more: other attempts (of another account, of a guesser) stay
// counted.
func (s *Server) succeeded(ctx context.Context, a signIn) error {
	return throttle.Refund(ctx, s.accounts, a.keys...)
}

// auditLock records that l started. A failure to record it is logged: the
// lock holds either way.
func (s *Server) auditLock(ctx context.Context, client string, l throttle.Lock, websiteID int64, tenant string) {
	e := audit.Entry{
		Actor: "sign-in from " + client, Action: audit.SignInLock, Outcome: audit.Done,
		WebsiteID: websiteID, Tenant: tenant,
		Detail: fmt.Sprintf("%s locked for %s (lock %d) after %d sign-in attempts", lockSubject(l.Key), roundUp(time.Until(l.Until)), l.Locks, l.Count),
	}
	if err := audit.Record(context.WithoutCancel(ctx), s.accounts, e); err != nil {
		s.log.Error("recording a sign-in lock", "error", err)
	}
}

// lockSubject names what a lock is on, for people.
func lockSubject(k throttle.Key) string {
	if k.Kind == throttle.SignInAccount {
		return "account " + k.Subject
	}
	return "address " + k.Subject
}

func roundUp(d time.Duration) time.Duration {
	return time.Duration(math.Ceil(d.Seconds())) * time.Second
}

// tooManySignIns sets Retry-After for a refused sign-in and returns what
// the form says.
func tooManySignIns(w http.ResponseWriter, d throttle.Decision) string {
	wait := waitText(setRetryAfter(w, d.RetryAfter))
	if d.By.Kind == throttle.SignInAccount {
		return "Too many sign-in attempts for this account. Please try again in " + wait +
			". If this keeps happening, the platform's operators can clear the lock."
	}
	return "Too many failed sign-ins from your network address. Please try again in " + wait + "."
}

// setRetryAfter tells the client to wait d, in whole seconds (at least one),
// and returns them.
func setRetryAfter(w http.ResponseWriter, d time.Duration) int {
	secs := max(int(roundUp(d).Seconds()), 1)
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	return secs
}

// waitText says a wait of secs seconds in whole minutes, or seconds when
// under one.
func waitText(secs int) string {
	if secs < 60 {
		return fmt.Sprintf("%d second%s", secs, plural(secs))
	}
	mins := (secs + 59) / 60
	return fmt.Sprintf("%d minute%s", mins, plural(mins))
}
