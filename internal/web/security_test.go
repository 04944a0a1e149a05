package web

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/propertywebbuilder/pwb/internal/account"
	"github.com/propertywebbuilder/pwb/internal/shard"
	"github.com/propertywebbuilder/pwb/internal/throttle"
)

// from returns the platform as seen by a client whose connections come from
// the loopback address ip (any of 127.0.0.0/8 works on Linux), so a test
// can be many clients.
func (p *platform) from(ip string) *platform {
	q := *p
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	q.client = &http.Client{
		Timeout:       p.client.Timeout,
		Transport:     &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true},
		CheckRedirect: p.client.CheckRedirect,
	}
	return &q
}

// throttleRows lists kind's counted subjects and their counts.
func throttleRows(t *testing.T, p *platform, kind string) map[string]int {
	t.Helper()
	rows, err := p.primary.Query(context.Background(), "SELECT subject, count FROM throttles WHERE kind = $1", kind)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var s string
		var n int
		if err := rows.Scan(&s, &n); err != nil {
			t.Fatal(err)
		}
		out[s] = n
	}
	return out
}

func TestClientOf(t *testing.T) {
	t.Parallel()
	s := &Server{trustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}}
	for _, c := range []struct {
		name, remote string
		xff          []string
		want         string
		via          bool
	}{
		{"a stranger's header is ignored", "203.0.113.9:5000", []string{"198.51.100.1"}, "203.0.113.9", false},
		{"no header from a proxy", "10.0.0.2:5000", nil, "10.0.0.2", true},
		{"one hop", "10.0.0.2:5000", []string{"198.51.100.1"}, "198.51.100.1", true},
		{"the right-most address that is no proxy", "10.0.0.2:5000", []string{"192.0.2.66, 198.51.100.1, 10.1.1.1"}, "198.51.100.1", true},
		{"several headers in order", "10.0.0.2:5000", []string{"192.0.2.66", "198.51.100.1", "10.1.1.1"}, "198.51.100.1", true},
		{"every hop a proxy", "10.0.0.2:5000", []string{"10.9.9.9, 10.1.1.1"}, "10.9.9.9", true},
		{"garbage stops the walk", "10.0.0.2:5000", []string{"198.51.100.1, not-an-address, 10.1.1.1"}, "10.1.1.1", true},
		{"ports and brackets", "[fd00::2]:5000", []string{"[2001:db8::7]:443, 198.51.100.3:8080"}, "198.51.100.3", true},
		{"IPv6 proxy, IPv6 client", "[fd00::2]:5000", []string{"2001:db8::7"}, "2001:db8::7", true},
		{"IPv4-mapped proxy", "[::ffff:10.0.0.2]:5000", []string{"198.51.100.1"}, "198.51.100.1", true},
	} {
		r, _ := http.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = c.remote
		for _, h := range c.xff {
			r.Header.Add("X-Forwarded-For", h)
		}
		got, via := s.clientOf(r)
		if got.String() != c.want || via != c.via {
			t.Errorf("%s: %s, %v; want %s, %v", c.name, got, via, c.want, c.via)
		}
	}
}

// Only a trusted proxy may name the client (X-Forwarded-For) and the tenant
// (X-Website-Slug); from anyone else both are ignored. The sign-in limit per
// address then hits the forwarded client, not the proxy.
func TestTrustedProxies(t *testing.T) {
	t.Parallel()
	addrRule := throttle.Rule{Limit: 3, Window: time.Hour, Lock: time.Minute, MaxLock: time.Hour}
	guess := func(p *platform, xff, email string) response {
		req, _ := http.NewRequest(http.MethodPost, "/site_admin/login", strings.NewReader(url.Values{"email": {email}, "password": {"a wrong guess"}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if xff != "" {
			req.Header.Set("X-Forwarded-For", xff)
		}
		return p.do("acme.localhost", req)
	}
	slugged := func(p *platform) response {
		req, _ := http.NewRequest(http.MethodGet, "/", nil)
		req.Header.Set("X-Website-Slug", "beta")
		return p.do("acme.localhost", req)
	}

	t.Run("from a stranger", func(t *testing.T) {
		t.Parallel()
		p := newPlatform(t, platformOptions{signInAddress: addrRule})
		p.tenant("acme", shard.Default)
		p.tenant("beta", shard.Default)
		// A new forwarded address for every guess changes nothing: the
		// connection's address is counted.
		for i := range 3 {
			wantStatus(t, guess(p, "198.51.100."+strconv.Itoa(i), "user"+strconv.Itoa(i)+"@example.com"), http.StatusUnauthorized)
		}
		r := guess(p, "198.51.100.99", "someone@example.com")
		wantStatus(t, r, http.StatusTooManyRequests)
		saWantBody(t, r, "Too many failed sign-ins from your network address")
		if got := throttleRows(t, p, throttle.SignInAddress); len(got) != 1 || got["127.0.0.1"] != 0 {
			t.Errorf("address counts %v, want only 127.0.0.1 (locked, count reset)", got)
		}
		// The tenant header is ignored too, and nothing varies by it.
		r = slugged(p)
		wantStatus(t, r, http.StatusOK)
		saWantBody(t, r, "Acme Homes")
		if v := r.Header.Values("Vary"); strings.Contains(strings.Join(v, ","), "X-Website-Slug") {
			t.Errorf("Vary %v from a stranger", v)
		}
	})

	t.Run("from a trusted proxy", func(t *testing.T) {
		t.Parallel()
		p := newPlatform(t, platformOptions{signInAddress: addrRule, trusted: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}})
		p.tenant("acme", shard.Default)
		p.tenant("beta", shard.Default)
		for i := range 3 {
			wantStatus(t, guess(p, "198.51.100.7", "user"+strconv.Itoa(i)+"@example.com"), http.StatusUnauthorized)
		}
		// The forwarded client is locked out, not the proxy: another client
		// behind it still signs in.
		r := guess(p, "198.51.100.7", "someone@example.com")
		wantStatus(t, r, http.StatusTooManyRequests)
		saWantBody(t, r, "from your network address")
		wantStatus(t, guess(p, "198.51.100.8, 127.0.0.1", "someone@example.com"), http.StatusUnauthorized)
		got := throttleRows(t, p, throttle.SignInAddress)
		if _, ok := got["127.0.0.1"]; ok || len(got) != 2 || got["198.51.100.8"] != 1 {
			t.Errorf("address counts %v, want the two forwarded clients only", got)
		}
		// The tenant header is honoured, and says so to caches.
		r = slugged(p)
		wantStatus(t, r, http.StatusOK)
		saWantBody(t, r, "Beta Homes")
		if v := strings.Join(r.Header.Values("Vary"), ","); !strings.Contains(v, "X-Website-Slug") {
			t.Errorf("Vary %q, want X-Website-Slug", v)
		}
	})
}

// A successful sign-in takes back only its own attempt: an attacker who owns
// one account cannot reset the count of the account they guess at.
func TestSignIn_SuccessDoesNotResetAnotherAccountsCount(t *testing.T) {
	t.Parallel()
	const limit = 5
	p := newPlatform(t, platformOptions{signIn: throttle.Rule{Limit: limit, Window: time.Hour, Lock: time.Minute, MaxLock: time.Hour}})
	acme := p.tenant("acme", shard.Default)
	mine, minePassword := p.member(acme, "attacker@acme.example")
	if _, err := account.CreateSuperAdmin(context.Background(), p.primary, "root@example.com", "the real root password"); err != nil {
		t.Fatal(err)
	}
	for round := range limit + 2 {
		r := p.postForm("localhost", "/admin/login", url.Values{"email": {"root@example.com"}, "password": {"guess " + strconv.Itoa(round)}})
		if round < limit {
			wantStatus(t, r, http.StatusUnauthorized)
		} else {
			// Past the limit: refused, however many of the attacker's own
			// sign-ins came between.
			wantStatus(t, r, http.StatusTooManyRequests)
			saWantBody(t, r, "Too many sign-in attempts for this account")
		}
		saSignIn(t, p, "acme.localhost", mine, minePassword)
	}
	// And the right password is refused unchecked too.
	r := p.postForm("localhost", "/admin/login", url.Values{"email": {"root@example.com"}, "password": {"the real root password"}})
	wantStatus(t, r, http.StatusTooManyRequests)
}

// Guessing one account from many addresses is stopped by the account's
// count: each address has made only a guess or two.
func TestSignIn_GuessingFromManyAddresses(t *testing.T) {
	t.Parallel()
	const limit = 10
	p := newPlatform(t, platformOptions{signIn: throttle.Rule{Limit: limit, Window: time.Hour, Lock: time.Minute, MaxLock: time.Hour}})
	acme := p.tenant("acme", shard.Default)
	email, password := p.member(acme, "owner@acme.example")
	var refused int
	for i := range 30 {
		from := p.from("127.0.0." + strconv.Itoa(10+i))
		r := from.postForm("acme.localhost", "/site_admin/login", url.Values{"email": {email}, "password": {"guess " + strconv.Itoa(i)}})
		switch {
		case i < limit:
			wantStatus(t, r, http.StatusUnauthorized)
		default:
			wantStatus(t, r, http.StatusTooManyRequests)
			saWantBody(t, r, "Too many sign-in attempts for this account")
			refused++
		}
	}
	// The owner, from an address of their own, waits out the lock too
	// (short: a minute), and is told so.
	r := p.from("127.0.0.200").postForm("acme.localhost", "/site_admin/login", url.Values{"email": {email}, "password": {password}})
	wantStatus(t, r, http.StatusTooManyRequests)
	saWantBody(t, r, "1 minute")
	counted := 0
	for _, n := range throttleRows(t, p, throttle.SignInAddress) {
		counted += n
	}
	if counted != limit || refused != 20 {
		t.Errorf("%d attempts counted over the addresses, %d refused; want the %d that were checked, and 20", counted, refused, limit)
	}
}

// An operator sees the lock in the platform admin and clears it; the owner
// then signs in at once. The audit log records the lock and the clearing.
func TestSignIn_LockSeenAndClearedInThePlatformAdmin(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p := newPlatform(t, platformOptions{signIn: throttle.Rule{Limit: 2, Window: time.Hour, Lock: 10 * time.Minute, MaxLock: time.Hour}})
	acme := p.tenant("acme", shard.Default)
	email, password := p.member(acme, "owner@acme.example")
	cookie, csrf := p.superAdmin("ops@example.com")
	for range 3 {
		p.postForm("acme.localhost", "/site_admin/login", url.Values{"email": {email}, "password": {"wrong"}})
	}
	r := p.postForm("acme.localhost", "/site_admin/login", url.Values{"email": {email}, "password": {password}})
	wantStatus(t, r, http.StatusTooManyRequests)
	saWantBody(t, r, "10 minutes")

	page := p.get("localhost", "/admin/sign-in-locks", cookie)
	paWantStatus(t, "locks page", page, http.StatusOK, "account owner@acme.example", `name="subject" value="owner@acme.example"`)

	// A form naming no lock is refused and changes nothing.
	for _, form := range []url.Values{
		{"kind": {"enquiry"}, "subject": {email}},
		{"kind": {throttle.SignInAccount}},
	} {
		form.Set(opsCSRFField, csrf)
		paWantStatus(t, "bad clear form", p.postForm("localhost", "/admin/sign-in-locks/clear", form, cookie), http.StatusUnprocessableEntity, "Nothing was changed")
	}
	wantStatus(t, p.postForm("acme.localhost", "/site_admin/login", url.Values{"email": {email}, "password": {password}}), http.StatusTooManyRequests)

	r = p.postForm("localhost", "/admin/sign-in-locks/clear", url.Values{"kind": {throttle.SignInAccount}, "subject": {email}, opsCSRFField: {csrf}}, cookie)
	wantStatus(t, r, http.StatusSeeOther)
	paWantStatus(t, "after clearing", p.get("localhost", r.Header.Get("Location"), cookie), http.StatusOK, "The lock is cleared", "No account or address is locked")
	saSignIn(t, p, "acme.localhost", email, password)
	// Clearing again is no error.
	wantStatus(t, p.postForm("localhost", "/admin/sign-in-locks/clear", url.Values{"kind": {throttle.SignInAccount}, "subject": {email}, opsCSRFField: {csrf}}, cookie), http.StatusSeeOther)

	var lockLines, clearLines int
	err := p.primary.QueryRow(ctx, `SELECT
		count(*) FILTER (WHERE action = 'sign_in_lock' AND website_id = $1 AND detail LIKE 'account owner@acme.example locked for 10m0s%'),
		count(*) FILTER (WHERE action = 'sign_in_unlock' AND actor = 'ops@example.com' AND detail LIKE 'account owner@acme.example cleared with %')
		FROM audit_log`, acme.ID).Scan(&lockLines, &clearLines)
	if err != nil {
		t.Fatal(err)
	}
	if lockLines != 1 || clearLines != 1 {
		t.Errorf("audit: %d lock lines and %d clear lines, want 1 and 1", lockLines, clearLines)
	}
	paWantStatus(t, "audit page", p.get("localhost", "/admin/audit", cookie), http.StatusOK, "sign_in_lock", "sign_in_unlock")
}

// Enquiries are limited per client address per website; the refusal is a
// friendly page that keeps what the visitor typed, and saves nothing.
func TestEnquiries_FloodIsAnswered429(t *testing.T) {
	t.Parallel()
	p := newPlatform(t, platformOptions{enquiries: throttle.Rule{Limit: 3, Window: time.Hour}})
	acme := p.tenant("acme", shard.Default)
	beta := p.tenant("beta", shard.Default)
	db := p.cluster.URL[shard.Default]
	send := func(pl *platform, host, name string) response {
		return pl.postForm(host, "/contact", url.Values{"name": {name}, "email": {"visitor@example.com"}, "message": {"Is the flat on Rua Augusta still free? " + name}})
	}
	// A form with a mistake is not counted.
	wantStatus(t, p.postForm("acme.localhost", "/contact", url.Values{"name": {"No Email"}, "message": {"hello"}}), http.StatusUnprocessableEntity)
	for i := range 3 {
		wantStatus(t, send(p, "acme.localhost", "Visitor "+strconv.Itoa(i)), http.StatusSeeOther)
	}
	r := send(p, "acme.localhost", "Visitor Four")
	wantStatus(t, r, http.StatusTooManyRequests)
	saWantBody(t, r, "not been sent yet", `value="Visitor Four"`, `value="visitor@example.com"`, "Is the flat on Rua Augusta still free? Visitor Four", "Acme Homes")
	if secs, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || secs < 3000 || secs > 3600 {
		t.Errorf("Retry-After %q, want the rest of the hour", r.Header.Get("Retry-After"))
	}
	if n := count(t, db, "messages", acme.ID); n != 3 {
		t.Errorf("%d messages saved, want 3", n)
	}
	// A property's enquiry form shares the count, and keeps the text too.
	home := listing(t, p.scope(acme), "Garden flat", nil)
	r = p.postForm("acme.localhost", "/properties/"+home.Slug+"/enquiry", url.Values{
		"name": {"Ann Smith"}, "email": {"ann@example.com"}, "phone": {"00351 21 000"}, "message": {"Can I visit on Saturday?"}})
	wantStatus(t, r, http.StatusTooManyRequests)
	saWantBody(t, r, "Garden flat", `value="Ann Smith"`, `value="00351 21 000"`, "Can I visit on Saturday?")
	if n := count(t, db, "messages", acme.ID); n != 3 {
		t.Errorf("%d messages saved, want still 3", n)
	}
	// The same address on another website, and another address on this
	// one, are counted apart.
	wantStatus(t, send(p, "beta.localhost", "Visitor Five"), http.StatusSeeOther)
	wantStatus(t, send(p.from("127.0.0.77"), "acme.localhost", "Someone Else"), http.StatusSeeOther)
	if n := count(t, db, "messages", beta.ID); n != 1 {
		t.Errorf("beta has %d messages, want 1", n)
	}
}

// The platform admin answers only on the configured platform hosts: not on
// an IP address unless it is one of them.
func TestPlatformAdmin_OnlyOnPlatformHosts(t *testing.T) {
	t.Parallel()
	p := newPlatform(t, platformOptions{})
	p.superAdmin("ops@example.com")
	for _, host := range []string{"127.0.0.1", "127.0.0.1:3000", "[::1]:3000", "10.1.2.3"} {
		r := p.get(host, "/admin/login")
		paWantStatus(t, "admin on "+host, r, http.StatusNotFound, "There is no website at")
		if strings.Contains(r.Body, `name="password"`) {
			t.Errorf("%s shows the sign-in form", host)
		}
	}
	paWantStatus(t, "admin on localhost", p.get("localhost", "/admin/login"), http.StatusOK, `name="password"`)

	q := newPlatform(t, platformOptions{platformDomains: []string{"pwb.example.com", "10.1.2.3"}})
	paWantStatus(t, "a configured address", q.get("10.1.2.3:3000", "/admin/login"), http.StatusOK, `name="password"`)
	paWantStatus(t, "a configured host", q.get("pwb.example.com", "/admin/login"), http.StatusOK, `name="password"`)
	paWantStatus(t, "another address", q.get("127.0.0.1", "/admin/login"), http.StatusNotFound)
	paWantStatus(t, "a domain no longer configured", q.get("localhost", "/admin/login"), http.StatusNotFound)
	// /healthz and /readyz stay public on any host, and name no tenant.
	for _, host := range []string{"127.0.0.1", "nobody.example", "localhost"} {
		for _, path := range []string{"/healthz", "/readyz"} {
			r := q.get(host, path)
			if r.StatusCode != http.StatusOK || len(r.Body) > 10 {
				t.Errorf("%s on %s: %d %q", path, host, r.StatusCode, r.Body)
			}
		}
	}
}
