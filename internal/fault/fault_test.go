package fault_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/propertywebbuilder/pwb/internal/fault"
)

var kinds = []error{fault.NotFound, fault.Conflict, fault.Invalid, fault.Refused, fault.Unavailable}

func TestNew_IsItselfAndItsKindOnly(t *testing.T) {
	for _, kind := range kinds {
		e := fault.New(kind, "already taken")
		if e.Error() != "already taken" {
			t.Errorf("Error() = %q, want the message alone", e.Error())
		}
		wrapped := fmt.Errorf("subdomain %q: %w", "acme", e)
		if !errors.Is(wrapped, e) || !errors.Is(wrapped, kind) {
			t.Errorf("%v: errors.Is misses the error or its kind %v", wrapped, kind)
		}
		for _, other := range kinds {
			if other != kind && errors.Is(e, other) {
				t.Errorf("an error of kind %v is also %v", kind, other)
			}
		}
		if twin := fault.New(kind, "already taken"); errors.Is(e, twin) || errors.Is(twin, e) {
			t.Errorf("two errors declared apart match each other")
		}
	}
}

func TestNew_RefusesWhatIsNotAKind(t *testing.T) {
	for _, notKind := range []error{errors.New("not found"), fault.New(fault.NotFound, "no such tenant")} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("New(%q, ...) did not panic", notKind)
				}
			}()
			fault.New(notKind, "x")
		}()
	}
}

// isConflict has an Is method instead of an Unwrap, as some error types do.
type isConflict struct{}

func (isConflict) Error() string        { return "clash" }
func (isConflict) Is(target error) bool { return target == fault.Conflict }

func TestKindOf(t *testing.T) {
	noSuchTenant := fault.New(fault.NotFound, "no such tenant")
	paused := fault.New(fault.Unavailable, "writes are paused")
	for _, c := range []struct {
		name string
		err  error
		want error
	}{
		{"nil", nil, nil},
		{"an error of no kind", errors.New("disk full"), nil},
		{"a kind itself", fault.Refused, fault.Refused},
		{"a package's error", noSuchTenant, fault.NotFound},
		{"wrapped", fmt.Errorf("provisioning: %w", noSuchTenant), fault.NotFound},
		{"wrapped twice", fmt.Errorf("a: %w", fmt.Errorf("b: %w", paused)), fault.Unavailable},
		{"a refusal because of a missing tenant: the outer kind decides",
			fmt.Errorf("%w: %w", fault.Refused, noSuchTenant), fault.Refused},
		{"a kind behind a cause of none", fmt.Errorf("%w: %w", errors.New("x"), paused), fault.Unavailable},
		{"joined", errors.Join(errors.New("x"), noSuchTenant, paused), fault.NotFound},
		{"an Is method", fmt.Errorf("saving: %w", isConflict{}), fault.Conflict},
	} {
		if got := fault.KindOf(c.err); got != c.want {
			t.Errorf("%s: KindOf(%v) = %v, want %v", c.name, c.err, got, c.want)
		}
		if c.want != nil && !errors.Is(c.err, c.want) {
			t.Errorf("%s: KindOf says %v, which errors.Is does not match", c.name, c.want)
		}
	}
}
