package content_test

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/propertywebbuilder/pwb/internal/content"
	"github.com/propertywebbuilder/pwb/internal/shard"
	"github.com/propertywebbuilder/pwb/internal/tenant"
)

// owned is one of everything, belonging to one website.
type owned struct {
	property content.Property
	photo    content.PhotoInfo
	page     content.Page
	message  uuid.UUID
}

func seed(t *testing.T, s tenant.Scope) owned {
	t.Helper()
	in := fullInput()
	in.Title = "Secret listing"
	var o owned
	o.property = mustCreate(t, s, in)
	o.photo = mustPhoto(t, s, o.property, pngBytes(t))
	o.page = mustPage(t, s, content.PageInput{Title: "Secret page", Visible: true})
	var err error
	o.message, err = content.SubmitEnquiry(context.Background(), s, content.Enquiry{
		Name: "Owner's client", Email: "client@example.com", Body: "Private", PropertyID: &o.property.ID})
	if err != nil {
		t.Fatal(err)
	}
	if err := content.SaveAgency(context.Background(), s, content.Agency{Name: "Owner agency"}); err != nil {
		t.Fatal(err)
	}
	return o
}

// Every function that takes an id answers ErrNotFound for another website's
// row and changes nothing, whether that website is on the same shard (only
// website_id keeps them apart) or on another server.
func TestIsolation_AnotherWebsitesRowsAreNotFound(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 1)
	for _, tc := range []struct {
		name                string
		ownerOn, intruderOn string
	}{
		{"same shard", "shard_1", "shard_1"},
		{"same shard, primary", shard.Default, shard.Default},
		{"primary's row from shard_1", shard.Default, "shard_1"},
		{"shard_1's row from primary", "shard_1", shard.Default},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			owner, intruder := e.site(t, tc.ownerOn), e.site(t, tc.intruderOn)
			o := seed(t, owner)
			ownerBefore, intruderBefore := snapshot(t, owner), snapshot(t, intruder)
			s := intruder
			p := o.property

			notFound := map[string]error{}
			_, notFound["GetProperty"] = content.GetProperty(ctx, s, p.ID)
			_, notFound["GetVisibleProperty"] = content.GetVisibleProperty(ctx, s, p.Slug)
			_, notFound["UpdateProperty"] = content.UpdateProperty(ctx, s, p.ID, house("Hijacked"))
			notFound["DeleteProperty"] = content.DeleteProperty(ctx, s, p.ID)
			_, notFound["AddPhoto"] = content.AddPhoto(ctx, s, p.ID, pngBytes(t), photoLimits)
			_, notFound["GetPhoto public"] = content.GetPhoto(ctx, s, o.photo.ID, true)
			_, notFound["GetPhoto admin"] = content.GetPhoto(ctx, s, o.photo.ID, false)
			notFound["DeletePhoto"] = content.DeletePhoto(ctx, s, o.photo.ID)
			notFound["MovePhoto"] = content.MovePhoto(ctx, s, p.ID, o.photo.ID, 1)
			_, notFound["SubmitEnquiry about their property"] = content.SubmitEnquiry(ctx, s,
				content.Enquiry{Name: "X", Email: "x@example.com", Body: "Hi", PropertyID: &p.ID})
			_, notFound["GetMessage"] = content.GetMessage(ctx, s, o.message)
			notFound["SetMessageRead"] = content.SetMessageRead(ctx, s, o.message, true)
			_, notFound["GetPage"] = content.GetPage(ctx, s, o.page.ID)
			_, notFound["GetVisiblePage"] = content.GetVisiblePage(ctx, s, o.page.Slug)
			_, notFound["UpdatePage"] = content.UpdatePage(ctx, s, o.page.ID, content.PageInput{Title: "Hijacked"})
			notFound["DeletePage"] = content.DeletePage(ctx, s, o.page.ID)
			for name, err := range notFound {
				if !errors.Is(err, content.ErrNotFound) {
					t.Errorf("%s of another website's row: %v, want ErrNotFound", name, err)
				}
			}

			// Lists and counts show none of the owner's rows.
			res, err := content.Search(ctx, s, content.Filter{IncludeHidden: true})
			if err != nil || res.Total != 0 {
				t.Errorf("Search: %d results, %v", res.Total, err)
			}
			if res, err := content.ListProperties(ctx, s, content.ListFilter{Text: "secret"}); err != nil || res.Total != 0 {
				t.Errorf("ListProperties: %d results, %v", res.Total, err)
			}
			msgs, total, err := content.ListMessages(ctx, s, 1, 100)
			if err != nil || total != 0 || len(msgs) != 0 {
				t.Errorf("ListMessages: %d of %d, %v", len(msgs), total, err)
			}
			pages, err := content.ListPages(ctx, s, false)
			if err != nil || len(pages) != 0 {
				t.Errorf("ListPages: %v, %v", pageSlugs(pages), err)
			}
			if c, err := content.CountAll(ctx, s); err != nil || c != (content.Counts{}) {
				t.Errorf("CountAll: %+v, %v", c, err)
			}
			if a, err := content.GetAgency(ctx, s); err != nil || a != (content.Agency{}) {
				t.Errorf("GetAgency: %+v, %v", a, err)
			}
			if c, err := content.SearchChoices(ctx, s); err != nil || len(c.Types) != 0 || len(c.Cities) != 0 {
				t.Errorf("SearchChoices: %+v, %v", c, err)
			}

			if d := cmp.Diff(ownerBefore, snapshot(t, owner)); d != "" {
				t.Errorf("the owner's rows changed (-before +after):\n%s", d)
			}
			if d := cmp.Diff(intruderBefore, snapshot(t, intruder)); d != "" {
				t.Errorf("the intruder's rows changed (-before +after):\n%s", d)
			}
			// The owner still reaches everything.
			if _, err := content.GetProperty(ctx, owner, p.ID); err != nil {
				t.Errorf("owner's GetProperty: %v", err)
			}
			if _, err := content.GetPhoto(ctx, owner, o.photo.ID, true); err != nil {
				t.Errorf("owner's GetPhoto: %v", err)
			}
			if m, err := content.GetMessage(ctx, owner, o.message); err != nil || m.ReadAt != nil {
				t.Errorf("owner's GetMessage: %+v, %v", m, err)
			}
		})
	}
}
