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
)

func pageSlugs(ps []content.Page) []string {
	out := []string{}
	for _, p := range ps {
		out = append(out, p.Slug)
	}
	return out
}

func TestPages_CreateReadUpdateDelete(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newEnv(t, 0).site(t, shard.Default)

	about := mustPage(t, s, content.PageInput{Title: "About Us", Body: "We sell homes.", Visible: true, NavOrder: 2})
	if about.Slug != "about-us" || about.Title != "About Us" || about.Body != "We sell homes." || !about.Visible ||
		about.NavOrder != 2 || about.ID.Version() != 7 || about.CreatedAt.IsZero() {
		t.Errorf("created page %+v", about)
	}
	got, err := content.GetPage(ctx, s, about.ID)
	if err != nil || got != about {
		t.Errorf("GetPage = %+v, %v; want %+v", got, err, about)
	}
	if got, err := content.GetVisiblePage(ctx, s, "about-us"); err != nil || got != about {
		t.Errorf("GetVisiblePage = %+v, %v", got, err)
	}

	time.Sleep(2 * time.Millisecond)
	in := about.Input()
	in.Slug, in.Title, in.Visible = "", "Who We Are", false
	updated, err := content.UpdatePage(ctx, s, about.ID, in)
	if err != nil {
		t.Fatal(err)
	}
	if updated.Slug != "who-we-are" || updated.Visible || !updated.UpdatedAt.After(about.UpdatedAt) || !updated.CreatedAt.Equal(about.CreatedAt) {
		t.Errorf("updated page %+v", updated)
	}
	if _, err := content.GetVisiblePage(ctx, s, "who-we-are"); !errors.Is(err, content.ErrNotFound) {
		t.Errorf("GetVisiblePage of a hidden page: %v, want ErrNotFound", err)
	}
	if got, err := content.GetPage(ctx, s, about.ID); err != nil || got != updated {
		t.Errorf("admin GetPage of a hidden page: %+v, %v", got, err)
	}

	unknown := uuid.Must(uuid.NewV7())
	if _, err := content.GetPage(ctx, s, unknown); !errors.Is(err, content.ErrNotFound) {
		t.Errorf("GetPage of an unknown id: %v", err)
	}
	if _, err := content.UpdatePage(ctx, s, unknown, in); !errors.Is(err, content.ErrNotFound) {
		t.Errorf("UpdatePage of an unknown id: %v", err)
	}
	if _, err := content.UpdatePage(ctx, s, about.ID, content.PageInput{Slug: "Bad Slug!", Title: "x"}); !errors.Is(err, content.ErrInvalid) {
		t.Errorf("UpdatePage with a bad slug: %v, want ErrInvalid", err)
	}
	if err := content.DeletePage(ctx, s, about.ID); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "second DeletePage", content.DeletePage(ctx, s, about.ID), content.ErrNotFound)
	if _, err := content.GetPage(ctx, s, about.ID); !errors.Is(err, content.ErrNotFound) {
		t.Errorf("GetPage after delete: %v", err)
	}
}

func TestPages_SlugTakenIsConflict(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, 0)
	s, other := e.site(t, shard.Default), e.site(t, shard.Default)
	mustPage(t, s, content.PageInput{Title: "Terms"})
	contact := mustPage(t, s, content.PageInput{Title: "Contact"})
	before := snapshot(t, s)

	_, err := content.CreatePage(ctx, s, content.PageInput{Title: "Our Terms", Slug: "terms"})
	wantErr(t, "CreatePage with a taken slug", err, content.ErrConflict)
	_, err = content.CreatePage(ctx, s, content.PageInput{Title: "Terms"})
	wantErr(t, "CreatePage whose title makes a taken slug", err, content.ErrConflict)
	_, err = content.UpdatePage(ctx, s, contact.ID, content.PageInput{Title: "Contact", Slug: "terms"})
	wantErr(t, "UpdatePage to a taken slug", err, content.ErrConflict)
	if d := cmp.Diff(before, snapshot(t, s)); d != "" {
		t.Errorf("conflicting writes changed rows:\n%s", d)
	}
	mustPage(t, other, content.PageInput{Title: "Terms"}) // slugs are per website
	if _, err := content.UpdatePage(ctx, s, contact.ID, content.PageInput{Title: "Contact us", Slug: "contact"}); err != nil {
		t.Errorf("keeping a page's own slug: %v", err)
	}
}

func TestPages_ListInNavigationOrder(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, 0)
	s := e.site(t, shard.Default)
	mustPage(t, s, content.PageInput{Title: "Zebra", NavOrder: 1, Visible: true})
	mustPage(t, s, content.PageInput{Title: "Apple", NavOrder: 1, Visible: true})
	mustPage(t, s, content.PageInput{Title: "Draft", NavOrder: -5, Visible: false})
	mustPage(t, s, content.PageInput{Title: "Home", NavOrder: -10, Visible: true})
	mustPage(t, e.site(t, shard.Default), content.PageInput{Title: "Not mine", Visible: true})

	all, err := content.ListPages(ctx, s, false)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]string{"home", "draft", "apple", "zebra"}, pageSlugs(all)); d != "" {
		t.Errorf("all pages (-want +got):\n%s", d)
	}
	visible, err := content.ListPages(ctx, s, true)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]string{"home", "apple", "zebra"}, pageSlugs(visible)); d != "" {
		t.Errorf("visible pages (-want +got):\n%s", d)
	}
}

func TestAgency_EmptyUntilSavedThenUpdatedInPlace(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, 0)
	s, other := e.site(t, shard.Default), e.site(t, shard.Default)
	if a, err := content.GetAgency(ctx, s); err != nil || a != (content.Agency{}) {
		t.Errorf("agency before saving: %+v, %v", a, err)
	}
	a := content.Agency{Name: " Acme Homes ", Email: "office@acme.example", Phone: "+1 555", Address: "1 Main St\nSpringfield"}
	if err := content.SaveAgency(ctx, s, a); err != nil {
		t.Fatal(err)
	}
	a.Name = "Acme Homes"
	if got, err := content.GetAgency(ctx, s); err != nil || got != a {
		t.Errorf("saved agency: %+v, %v; want %+v", got, err, a)
	}
	b := content.Agency{Name: "Acme Realty"}
	if err := content.SaveAgency(ctx, s, b); err != nil {
		t.Fatal(err)
	}
	if got, err := content.GetAgency(ctx, s); err != nil || got != b {
		t.Errorf("re-saved agency: %+v, %v; want %+v", got, err, b)
	}
	if n := len(snapshot(t, s)["agencies"]); n != 1 {
		t.Errorf("%d agency rows after two saves, want 1", n)
	}
	if got, err := content.GetAgency(ctx, other); err != nil || got != (content.Agency{}) {
		t.Errorf("another website's agency: %+v, %v", got, err)
	}
	before := snapshot(t, s)
	wantErr(t, "SaveAgency with a bad email", content.SaveAgency(ctx, s, content.Agency{Email: "office at acme"}), content.ErrInvalid)
	if d := cmp.Diff(before, snapshot(t, s)); d != "" {
		t.Errorf("invalid agency changed rows:\n%s", d)
	}
}
