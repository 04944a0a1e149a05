package web

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/propertywebbuilder/pwb/internal/pglocal/pgtest"
	"github.com/propertywebbuilder/pwb/internal/shard"
)

// Anyone can type a known contact's address into the public contact form.
// What the site admin shows for an earlier message must not change because
// of it: the list and the first message's page keep the name and phone the
// first enquiry was sent with, and the later one shows its own.
func TestEnquiryHistory_ALaterEnquiryDoesNotRewriteEarlierMessages(t *testing.T) {
	t.Parallel()
	p := newPlatform(t, platformOptions{})
	acme := p.tenant("acme", shard.Default)
	const host = "acme.localhost"
	db := p.cluster.URL[shard.Default]

	send := func(name, email, phone, message string) {
		t.Helper()
		wantStatus(t, p.postForm(host, "/contact", url.Values{
			"name": {name}, "email": {email}, "phone": {phone}, "message": {message}}), http.StatusSeeOther)
	}
	send("Ann Lee", "ann@example.com", "+34 600 000 001", "First enquiry")
	send("Mallory Impostor", "ANN@example.com", "+1 555 0100", "Second enquiry")
	if n := count(t, db, "contacts", acme.ID); n != 1 {
		t.Fatalf("%d contacts after two enquiries from one address, want 1", n)
	}
	if got := pgtest.QueryValue[string](t, db, "SELECT name || ' ' || phone FROM contacts WHERE website_id = $1", acme.ID); got != "Ann Lee +34 600 000 001" {
		t.Errorf("contact after the second enquiry: %q, want the first enquiry's name and phone", got)
	}
	firstID := pgtest.QueryValue[string](t, db, "SELECT id::text FROM messages WHERE website_id = $1 AND body = 'First enquiry'", acme.ID)

	email, password := p.member(acme, "owner@acme.example")
	cookie := saSignIn(t, p, host, email, password)

	r := p.get(host, "/site_admin/messages", cookie)
	wantStatus(t, r, http.StatusOK)
	saWantBody(t, r, "Ann Lee", "Mallory Impostor", "/site_admin/messages/"+firstID)
	row := messageRow(r.Body, "/site_admin/messages/"+firstID)
	if !strings.Contains(row, "Ann Lee") || !strings.Contains(row, "ann@example.com") || strings.Contains(row, "Mallory") {
		t.Errorf("the first message's row in the list:\n%s", row)
	}

	r = p.get(host, "/site_admin/messages/"+firstID, cookie)
	wantStatus(t, r, http.StatusOK)
	// html/template writes "+" as &#43;.
	saWantBody(t, r, "First enquiry", "Message from Ann Lee", "34 600 000 001", "ann@example.com")
	for _, later := range []string{"Mallory", "555 0100"} {
		if strings.Contains(r.Body, later) {
			t.Errorf("the first message's page shows %q of the later enquiry:\n%s", later, excerpt(r.Body))
		}
	}
}

// messageRow is the table row of the message list that links to href.
func messageRow(body, href string) string {
	i := strings.Index(body, `href="`+href+`"`)
	if i < 0 {
		return ""
	}
	start := strings.LastIndex(body[:i], "<tr")
	end := strings.Index(body[i:], "</tr>")
	if start < 0 || end < 0 {
		return ""
	}
	return body[start : i+end]
}
