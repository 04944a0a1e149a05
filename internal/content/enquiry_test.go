package content_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/propertywebbuilder/pwb/internal/content"
	"github.com/propertywebbuilder/pwb/internal/shard"
	"github.com/propertywebbuilder/pwb/internal/tenant"
)

func TestEnquiry_FindsOrCreatesTheContactByEmail(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, 0)
	s, other := e.site(t, shard.Default), e.site(t, shard.Default)
	p := mustCreate(t, s, house("Asked about"))

	first, err := content.SubmitEnquiry(ctx, s, content.Enquiry{Name: "Ann Lee", Email: "Ann.Lee@Example.com", Phone: "+34 600 000 000", Body: "First"})
	if err != nil {
		t.Fatal(err)
	}
	// Same address in another case, a new name, no phone: one contact, and
	// each message shows what was sent with it.
	second, err := content.SubmitEnquiry(ctx, s, content.Enquiry{Name: "Ann L.", Email: "  ann.lee@EXAMPLE.COM ", Body: "Second", PropertyID: &p.ID})
	if err != nil {
		t.Fatal(err)
	}
	// The same person writing to another website is that website's contact.
	mustEnquire(t, other, content.Enquiry{Name: "Ann", Email: "ann.lee@example.com", Body: "Elsewhere"})

	snap := snapshot(t, s)
	if len(snap["contacts"]) != 1 || len(snap["messages"]) != 2 {
		t.Fatalf("after two enquiries from one address: %d contacts, %d messages, want 1 and 2",
			len(snap["contacts"]), len(snap["messages"]))
	}
	if n := len(snapshot(t, other)["contacts"]); n != 1 {
		t.Errorf("other website has %d contacts, want 1", n)
	}
	msgs, total, err := content.ListMessages(ctx, s, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := []content.Message{
		{ID: second, Body: "Second", ContactName: "Ann L.", ContactEmail: "ann.lee@EXAMPLE.COM",
			PropertyID: &p.ID, PropertyTitle: "Asked about"},
		{ID: first, Body: "First", ContactName: "Ann Lee", ContactEmail: "Ann.Lee@Example.com", ContactPhone: "+34 600 000 000"},
	}
	if d := cmp.Diff(want, msgs, cmpIgnoreCreatedAt); d != "" || total != 2 {
		t.Errorf("messages, total %d (-want +got):\n%s", total, d)
	}
	for _, id := range []uuid.UUID{first, second} {
		if id.Version() != 7 {
			t.Errorf("message id %s is not UUIDv7", id)
		}
	}
}

// Anyone can type an existing contact's address into the form: a later
// enquiry changes neither what earlier messages show nor the contact's name
// and phone, and only fills in what the contact lacked.
func TestEnquiry_ALaterEnquiryDoesNotRewriteHistory(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newEnv(t, 0).site(t, shard.Default)
	type contact struct{ email, name, phone string }
	contactOf := func() contact {
		t.Helper()
		var c contact
		if err := s.QueryRow(ctx, "SELECT email, name, phone FROM contacts WHERE website_id = $1", s.WebsiteID).
			Scan(&c.email, &c.name, &c.phone); err != nil {
			t.Fatal(err)
		}
		return c
	}

	first, err := content.SubmitEnquiry(ctx, s, content.Enquiry{Name: "Ann Lee", Email: "ann@example.com", Phone: "+34 600 000 001", Body: "Is it free?"})
	if err != nil {
		t.Fatal(err)
	}
	want := contact{"ann@example.com", "Ann Lee", "+34 600 000 001"}
	second, err := content.SubmitEnquiry(ctx, s, content.Enquiry{Name: "Mallory", Email: "ANN@example.com", Phone: "+1 555 0100", Body: "Call me"})
	if err != nil {
		t.Fatal(err)
	}
	if got := contactOf(); got != want {
		t.Errorf("contact after a second enquiry from its address: %+v, want %+v", got, want)
	}
	wantFrom := map[uuid.UUID][3]string{
		first:  {"Ann Lee", "ann@example.com", "+34 600 000 001"},
		second: {"Mallory", "ANN@example.com", "+1 555 0100"},
	}
	for id, w := range wantFrom {
		m, err := content.GetMessage(ctx, s, id)
		if err != nil {
			t.Fatal(err)
		}
		if got := [3]string{m.ContactName, m.ContactEmail, m.ContactPhone}; got != w {
			t.Errorf("GetMessage %s: from %q, want %q", m.Body, got, w)
		}
	}
	msgs, _, err := content.ListMessages(ctx, s, 1, 0)
	if err != nil || len(msgs) != 2 {
		t.Fatalf("ListMessages: %d messages, %v", len(msgs), err)
	}
	for _, m := range msgs {
		if got := [3]string{m.ContactName, m.ContactEmail, m.ContactPhone}; got != wantFrom[m.ID] {
			t.Errorf("ListMessages %s: from %q, want %q", m.Body, got, wantFrom[m.ID])
		}
	}

	// A contact without a phone (one seeded before phones were asked for,
	// say) gets the first one an enquiry gives, and keeps it.
	if err := s.Write(ctx, func(tx tenant.Tx) error {
		_, err := tx.Exec(ctx, "UPDATE contacts SET phone = '' WHERE website_id = $1", s.WebsiteID)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	mustEnquire(t, s, content.Enquiry{Name: "Someone", Email: "ann@example.com", Phone: "+34 600 000 002", Body: "3"})
	mustEnquire(t, s, content.Enquiry{Name: "Someone else", Email: "ann@example.com", Phone: "+34 600 000 003", Body: "4"})
	if got, want := contactOf(), (contact{"ann@example.com", "Ann Lee", "+34 600 000 002"}); got != want {
		t.Errorf("contact without a phone after two enquiries: %+v, want %+v", got, want)
	}
}

var cmpIgnoreCreatedAt = cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == ".CreatedAt" }, cmp.Ignore())

func TestEnquiry_AboutAPropertyNeedsAVisibleOneOfThisWebsite(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, 0)
	s, other := e.site(t, shard.Default), e.site(t, shard.Default)
	in := house("Hidden")
	in.Visible = false
	hidden := mustCreate(t, s, in)
	theirs := mustCreate(t, other, house("Theirs"))
	before := snapshot(t, s)
	for name, id := range map[string]uuid.UUID{
		"hidden":          hidden.ID,
		"unknown":         uuid.Must(uuid.NewV7()),
		"another website": theirs.ID,
	} {
		_, err := content.SubmitEnquiry(ctx, s, content.Enquiry{Name: "Bob", Email: "bob@example.com", Body: "Hi", PropertyID: &id})
		wantErr(t, "enquiry about a "+name+" property", err, content.ErrNotFound)
	}
	_, err := content.SubmitEnquiry(ctx, s, content.Enquiry{Name: "Bob", Email: "not an address", Body: "Hi"})
	wantErr(t, "enquiry with a bad email", err, content.ErrInvalid)
	if d := cmp.Diff(before, snapshot(t, s)); d != "" {
		t.Errorf("refused enquiries wrote rows:\n%s", d)
	}
}

func TestMessages_ListPagesNewestFirstAndMarksRead(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newEnv(t, 0).site(t, shard.Default)
	var ids []uuid.UUID // newest first
	for i := range 25 {
		id, err := content.SubmitEnquiry(ctx, s, content.Enquiry{Name: "N", Email: "n@example.com", Body: string(rune('a' + i))})
		if err != nil {
			t.Fatal(err)
		}
		ids = append([]uuid.UUID{id}, ids...)
	}
	var got []uuid.UUID
	for page := 1; page <= 3; page++ {
		msgs, total, err := content.ListMessages(ctx, s, page, 10)
		if err != nil || total != 25 {
			t.Fatalf("page %d: total %d, %v", page, total, err)
		}
		for _, m := range msgs {
			got = append(got, m.ID)
		}
	}
	if d := cmp.Diff(ids, got); d != "" {
		t.Errorf("message order (-want +got):\n%s", d)
	}
	if msgs, _, err := content.ListMessages(ctx, s, 0, 0); err != nil || len(msgs) != content.DefaultMessagesPerPage || msgs[0].ID != ids[0] {
		t.Errorf("default page: %d messages, %v", len(msgs), err)
	}

	id := ids[3]
	if err := content.SetMessageRead(ctx, s, id, true); err != nil {
		t.Fatal(err)
	}
	m, err := content.GetMessage(ctx, s, id)
	if err != nil || m.ReadAt == nil {
		t.Fatalf("after marking read: %+v, %v", m, err)
	}
	readAt := *m.ReadAt
	time.Sleep(2 * time.Millisecond)
	if err := content.SetMessageRead(ctx, s, id, true); err != nil {
		t.Fatal(err)
	}
	if m, _ := content.GetMessage(ctx, s, id); m.ReadAt == nil || !m.ReadAt.Equal(readAt) {
		t.Errorf("marking read again moved read_at from %v to %v", readAt, m.ReadAt)
	}
	c, err := content.CountAll(ctx, s)
	if err != nil || c.Messages != 25 || c.UnreadMessages != 24 {
		t.Errorf("counts after one read: %+v, %v", c, err)
	}
	if err := content.SetMessageRead(ctx, s, id, false); err != nil {
		t.Fatal(err)
	}
	if m, _ := content.GetMessage(ctx, s, id); m.ReadAt != nil {
		t.Errorf("marked unread, read_at is %v", m.ReadAt)
	}
	unknown := uuid.Must(uuid.NewV7())
	wantErr(t, "SetMessageRead of an unknown id", content.SetMessageRead(ctx, s, unknown, true), content.ErrNotFound)
	if _, err := content.GetMessage(ctx, s, unknown); !errors.Is(err, content.ErrNotFound) {
		t.Errorf("GetMessage of an unknown id: %v, want ErrNotFound", err)
	}
}

func TestCountAll(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, 0)
	s := e.site(t, shard.Default)
	if c, err := content.CountAll(ctx, s); err != nil || c != (content.Counts{}) {
		t.Errorf("counts of a new website: %+v, %v", c, err)
	}
	a := mustCreate(t, s, house("A"))
	in := house("B")
	in.Visible = false
	b := mustCreate(t, s, in)
	mustPhoto(t, s, a, pngBytes(t))
	mustPhoto(t, s, b, pngBytes(t))
	mustPhoto(t, s, b, gifBytes(t))
	mustEnquire(t, s, content.Enquiry{Name: "N", Email: "n@example.com", Body: "1"})
	mustEnquire(t, s, content.Enquiry{Name: "N", Email: "n@example.com", Body: "2"})
	mustPage(t, s, content.PageInput{Title: "About"})
	mustCreate(t, e.site(t, shard.Default), house("Not counted"))

	want := content.Counts{Properties: 2, VisibleProperties: 1, Photos: 3, Messages: 2, UnreadMessages: 2, Pages: 1}
	if c, err := content.CountAll(ctx, s); err != nil || c != want {
		t.Errorf("CountAll = %+v, %v; want %+v", c, err, want)
	}
}
