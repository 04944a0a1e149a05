package web

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/propertywebbuilder/pwb/internal/audit"
	"github.com/propertywebbuilder/pwb/internal/throttle"
)

// The platform admin shows every account and client address that sign-in
// guessing has locked, and lets an operator clear a lock so a locked-out
// owner can sign in at once. Clearing is recorded in the audit log, as the
// lock itself was.

type opsLocksData struct {
	Locks []opsLock
}

type opsLock struct {
	throttle.Lock
	What string // "account x@y" or "address 203.0.113.9"
	Left time.Duration
}

func (s *Server) opsLocks(w http.ResponseWriter, r *http.Request) error {
	locks, err := throttle.Locks(r.Context(), s.accounts, throttle.SignInAccount, throttle.SignInAddress)
	if err != nil {
		return err
	}
	d := opsLocksData{}
	for _, l := range locks {
		d.Locks = append(d.Locks, opsLock{Lock: l, What: lockSubject(l.Key), Left: roundUp(time.Until(l.Until))})
	}
	return s.renderOps(w, r, http.StatusOK, "ops/locks", "Sign-in locks", d)
}

func (s *Server) opsClearLock(w http.ResponseWriter, r *http.Request) error {
	kind, subject := r.PostForm.Get("kind"), r.PostForm.Get("subject")
	if kind != throttle.SignInAccount && kind != throttle.SignInAddress || subject == "" {
		return errorPage(http.StatusUnprocessableEntity, "Not a sign-in lock",
			"The form does not name an account or address lock. Nothing was changed.")
	}
	k := throttle.Key{Kind: kind, Subject: subject}
	l, err := throttle.Clear(r.Context(), s.accounts, k)
	if errors.Is(err, throttle.ErrNotFound) {
		// Ended or cleared meanwhile: what the operator wanted is true.
		http.Redirect(w, r, opsPrefix+"/sign-in-locks?done=unlocked", http.StatusSeeOther)
		return nil
	}
	if err != nil {
		return err
	}
	detail := fmt.Sprintf("%s cleared after %d sign-in attempts", lockSubject(k), l.Count)
	if left := time.Until(l.Until); left > 0 {
		detail = fmt.Sprintf("%s cleared with %s of its lock left", lockSubject(k), roundUp(left))
	}
	e := audit.Entry{Actor: opsSessionFrom(r.Context()).Email, Action: audit.SignInUnlock, Outcome: audit.Done, Detail: detail}
	if err := audit.Record(r.Context(), s.accounts, e); err != nil {
		return err
	}
	http.Redirect(w, r, opsPrefix+"/sign-in-locks?done=unlocked", http.StatusSeeOther)
	return nil
}
