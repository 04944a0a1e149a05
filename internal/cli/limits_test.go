package cli

import (
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/propertywebbuilder/pwb/internal/pglocal/pgtest"
)

// Sign-in guesses are counted on primary before their password is checked,
// so two pwb serve processes sharing one primary together check no more
// passwords than the limit allows, however many guesses arrive at once.
func TestServe_ParallelGuessingAcrossTwoProcesses(t *testing.T) {
	t.Parallel()
	c := migratedCluster(t, 0)
	cfg := c.ConfigPath
	mustPWB(t, cfg, "tenants", "create", "--subdomain", "guessed", "--name", "Guessed Homes")
	const sitePassword, opsPassword = "the site owner's password", "the operator's password"
	if r := pwbInput(map[string]string{"PWB_ENV": "test", "PWB_CONFIG": cfg}, sitePassword+"\n",
		"tenants", "add-member", "guessed", "--email", "owner@guessed.example"); r.code != 0 {
		t.Fatalf("add-member: %+v", r)
	}
	if r := pwbInput(map[string]string{"PWB_ENV": "test", "PWB_CONFIG": cfg}, opsPassword+"\n",
		"users", "create-admin", "--email", "ops@guessed.example"); r.code != 0 {
		t.Fatalf("create-admin: %+v", r)
	}
	// What is tested is the count, not the request deadline: on a machine
	// busy with other tests, 200 requests at once can queue past 1.5 s and
	// be answered 503 before they are counted, which would say nothing
	// about the count.
	procs := []*serveProcess{startServeEnv(t, cfg, "PWB_REQUEST_TIMEOUT=30s"), startServeEnv(t, cfg, "PWB_REQUEST_TIMEOUT=30s")}
	const limit = 10 // the default per-account limit

	for _, target := range []struct {
		name, host, path, email, password string
	}{
		{"site admin", "guessed.localhost", "/site_admin/login", "owner@guessed.example", sitePassword},
		{"platform admin", "localhost", "/admin/login", "ops@guessed.example", opsPassword},
	} {
		t.Run(target.name, func(t *testing.T) {
			const guesses = 200
			right := rand.IntN(guesses)
			statuses := make([]int, guesses)
			bodies := make([]string, guesses)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range guesses {
				password := "wrong guess " + strings.Repeat("x", i%7)
				if i == right {
					password = target.password
				}
				p := procs[i%2]
				wg.Go(func() {
					<-start
					statuses[i], bodies[i] = p.request(t, http.MethodPost, target.host, target.path,
						url.Values{"email": {target.email}, "password": {password}})
				})
			}
			close(start)
			wg.Wait()
			count := map[int]int{}
			for i, s := range statuses {
				count[s]++
				if s == http.StatusTooManyRequests && !strings.Contains(bodies[i], "Too many sign-in attempts for this account") {
					t.Errorf("a 429 does not say why:\n%s", bodies[i])
				}
			}
			t.Logf("%d parallel guesses over two processes: %d wrong passwords checked (401), %d refused unchecked (429), right password (at %d) got %d",
				guesses, count[401], count[429], right, statuses[right])
			// The right password is let in only if it was among the first
			// checked; either way no more than the limit of wrong ones were
			// checked, and everything else was refused unchecked.
			if count[401] > limit || count[401]+count[303] == 0 || count[303] > 1 || count[401]+count[429]+count[303] != guesses {
				t.Errorf("statuses %v: want at most %d password checks that failed, every other answer 429", count, limit)
			}
			// Once the limit is reached, the right password does not get in
			// through either process.
			for _, p := range procs {
				if code, _ := p.request(t, http.MethodPost, target.host, target.path,
					url.Values{"email": {target.email}, "password": {target.password}}); code != http.StatusTooManyRequests {
					t.Errorf("the right password after the burst: %d, want 429", code)
				}
			}
			locks := pgtest.QueryValue[int64](t, c.URL["default"],
				"SELECT count(*) FROM throttles WHERE kind = 'sign_in_account' AND subject = $1 AND locked_until > now()", target.email)
			audits := pgtest.QueryValue[int64](t, c.URL["default"],
				"SELECT count(*) FROM audit_log WHERE action = 'sign_in_lock' AND detail LIKE '%' || $1 || '%'", target.email)
			if locks != 1 || audits != 1 {
				t.Errorf("%d locks of the account and %d audit lines, want 1 and 1", locks, audits)
			}
		})
	}
}

// Enquiries are counted on primary too: two processes together accept no
// more from one address than the limit, and answer the rest 429 with the
// visitor's text kept.
func TestServe_EnquiryFloodAcrossTwoProcesses(t *testing.T) {
	t.Parallel()
	c := migratedCluster(t, 0)
	cfg := c.ConfigPath
	mustPWB(t, cfg, "tenants", "create", "--subdomain", "flooded", "--name", "Flooded Homes")
	const limit = 5
	// A long request deadline, as in the guessing test above.
	procs := []*serveProcess{
		startServeEnv(t, cfg, "PWB_ENQUIRY_LIMIT=5", "PWB_REQUEST_TIMEOUT=30s"),
		startServeEnv(t, cfg, "PWB_ENQUIRY_LIMIT=5", "PWB_REQUEST_TIMEOUT=30s"),
	}
	const sent = 40
	statuses := make([]int, sent)
	bodies := make([]string, sent)
	var wg sync.WaitGroup
	for i := range sent {
		p := procs[i%2]
		wg.Go(func() {
			statuses[i], bodies[i] = p.request(t, http.MethodPost, "flooded.localhost", "/contact", url.Values{
				"name": {"Flood"}, "email": {"flood@example.com"}, "message": {"Message number " + strconv.Itoa(i)}})
		})
	}
	wg.Wait()
	count := map[int]int{}
	for i, s := range statuses {
		count[s]++
		if s == http.StatusTooManyRequests && !strings.Contains(bodies[i], "Message number "+strconv.Itoa(i)) {
			t.Errorf("a 429 lost the visitor's text")
		}
	}
	saved := pgtest.QueryValue[int64](t, c.URL["default"], "SELECT count(*) FROM messages")
	if count[http.StatusSeeOther] != limit || count[http.StatusTooManyRequests] != sent-limit || saved != limit {
		t.Errorf("statuses %v, %d saved; want %d sent (303), the rest 429, %d saved", count, saved, limit, limit)
	}
}
