package content_test

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/propertywebbuilder/pwb/internal/content"
	"github.com/propertywebbuilder/pwb/internal/shard"
)

// The frame of a page is the agency and ListPages' visible pages, in its
// order, of this website only.
func TestGetFrame_IsTheAgencyAndTheVisiblePagesInOrder(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, 0)
	s, other := e.site(t, shard.Default), e.site(t, shard.Default)

	a, menu, err := content.GetFrame(ctx, s)
	if err != nil || a != (content.Agency{}) || len(menu) != 0 {
		t.Errorf("frame of an empty site: %+v, %v, %v", a, menu, err)
	}

	agency := content.Agency{Name: "Casa & Co", Email: "hello@casa.example", Phone: "+351 21 000", Address: "Rua Augusta 1"}
	if err := content.SaveAgency(ctx, s, agency); err != nil {
		t.Fatal(err)
	}
	for _, in := range []content.PageInput{
		{Slug: "terms", Title: "Terms", Visible: true, NavOrder: 5},
		{Slug: "about", Title: "About us", Visible: true, NavOrder: 1},
		{Slug: "draft", Title: "Draft", Visible: false, NavOrder: 0},
		{Slug: "careers", Title: "Careers", Visible: true, NavOrder: 5},
	} {
		if _, err := content.CreatePage(ctx, s, in); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := content.CreatePage(ctx, other, content.PageInput{Slug: "theirs", Title: "Theirs", Visible: true}); err != nil {
		t.Fatal(err)
	}

	a, menu, err = content.GetFrame(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	if a != agency {
		t.Errorf("agency %+v, want %+v", a, agency)
	}
	pages, err := content.ListPages(ctx, s, true)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]string{"about", "careers", "terms"}, pageSlugs(menu)); d != "" {
		t.Errorf("menu (-want +got):\n%s", d)
	}
	if d := cmp.Diff(pageSlugs(pages), pageSlugs(menu)); d != "" {
		t.Errorf("menu and ListPages differ (-ListPages +menu):\n%s", d)
	}
	for i, p := range menu {
		if p.Title != pages[i].Title {
			t.Errorf("menu item %d: title %q, want %q", i, p.Title, pages[i].Title)
		}
	}
}
