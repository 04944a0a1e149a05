package web

// What search engines and link previews read of a tenant's site: its icon,
// robots.txt, sitemap.xml, and every public page's description and Open
// Graph tags.

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"encoding/xml"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/propertywebbuilder/pwb/internal/content"
	"github.com/propertywebbuilder/pwb/internal/units"
)

func (s *Server) seoRoutes(mux *http.ServeMux) {
	mux.Handle("GET /robots.txt", s.handle(robots))
	mux.Handle("GET /sitemap.xml", s.handle(s.sitemap))
}

// absoluteURL is path on the host and scheme the request came by: links
// that leave the page (a sitemap, a shared link's preview) must name the
// site.
func absoluteURL(r *http.Request, path string) string {
	return schemeOf(r) + "://" + r.Host + path
}

// ---- the icon ----

// favicon is the icon every site shows until tenants can set their own: a
// white house on the sites' green, one 32x32 PNG in an ICO file.
var favicon, faviconETag = makeFavicon()

func makeFavicon() ([]byte, string) {
	const size, radius = 32, 6
	green, white := color.NRGBA{0x1b, 0x6e, 0x5a, 0xff}, color.NRGBA{0xff, 0xff, 0xff, 0xff}
	img := image.NewNRGBA(image.Rect(0, 0, size, size))
	for y := range size {
		for x := range size {
			// Distance past the rounded corner's centre, on each axis.
			dx, dy := max(radius-x, x-(size-1-radius), 0), max(radius-y, y-(size-1-radius), 0)
			roof := y >= 6 && y < 16 && x >= 16-(y-5) && x <= 15+(y-5)
			walls := y >= 16 && y <= 25 && x >= 9 && x <= 22
			door := y >= 19 && x >= 14 && x <= 17
			switch {
			case dx*dx+dy*dy > radius*radius: // transparent corner
			case roof || walls && !door:
				img.SetNRGBA(x, y, white)
			default:
				img.SetNRGBA(x, y, green)
			}
		}
	}
	var pngData bytes.Buffer
	if err := png.Encode(&pngData, img); err != nil {
		panic("web: encoding the icon: " + err.Error())
	}
	// An ICO file: its header, one directory entry, the PNG it points to.
	var ico bytes.Buffer
	_ = binary.Write(&ico, binary.LittleEndian, [3]uint16{0, 1, 1}) // reserved, type icon, one image
	_ = binary.Write(&ico, binary.LittleEndian, struct {
		Width, Height, Colors, Reserved uint8
		Planes, BitsPerPixel            uint16
		Size, Offset                    uint32
	}{size, size, 0, 0, 1, 32, uint32(pngData.Len()), 6 + 16})
	ico.Write(pngData.Bytes())
	sum := sha256.Sum256(ico.Bytes())
	return ico.Bytes(), fmt.Sprintf(`"%x"`, sum[:8])
}

// serveFavicon answers /favicon.ico on every host; browsers ask for it
// whether a page names it or not.
func serveFavicon(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "image/x-icon")
	w.Header().Set("ETag", faviconETag)
	http.ServeContent(w, r, "favicon.ico", time.Time{}, bytes.NewReader(favicon))
}

// ---- robots.txt and sitemap.xml ----

// robots lets crawlers read the public site, keeps them out of the admin
// pages and names the sitemap.
func robots(w http.ResponseWriter, r *http.Request) error {
	body := "User-agent: *\nAllow: /\nDisallow: " + adminPrefix + "\nDisallow: " + opsPrefix + "\n\n" +
		"Sitemap: " + absoluteURL(r, "/sitemap.xml") + "\n"
	writeText(w, "text/plain; charset=utf-8", "public, max-age=3600", []byte(body))
	return nil
}

// maxSitemapURLs is what one sitemap file may list, by the sitemap
// protocol. A site with more properties lists its newest.
const maxSitemapURLs = 50_000

const sitemapNamespace = "http://www.sitemaps.org/schemas/sitemap/0.9"

type sitemapURL struct {
	Loc     string `xml:"loc"`
	LastMod string `xml:"lastmod,omitempty"`
}

type sitemapURLSet struct {
	XMLName xml.Name     `xml:"urlset"`
	XMLNS   string       `xml:"xmlns,attr"`
	URLs    []sitemapURL `xml:"url"`
}

// sitemap lists the site's public pages: the home page, the searches, its
// published pages, the contact page and every visible property, with
// absolute addresses on the site's host.
func (s *Server) sitemap(w http.ResponseWriter, r *http.Request) error {
	sc := siteFrom(r.Context()).Scope
	pages, err := content.ListPages(r.Context(), sc, true)
	if err != nil {
		return err
	}
	set := sitemapURLSet{XMLNS: sitemapNamespace}
	add := func(path string, changed time.Time) {
		if len(set.URLs) >= maxSitemapURLs {
			return
		}
		u := sitemapURL{Loc: absoluteURL(r, path)}
		if !changed.IsZero() {
			u.LastMod = changed.UTC().Format(time.RFC3339)
		}
		set.URLs = append(set.URLs, u)
	}
	for _, path := range []string{"/", "/buy", "/rent", "/contact"} {
		add(path, time.Time{})
	}
	for _, p := range pages {
		add("/p/"+url.PathEscape(p.Slug), p.UpdatedAt)
	}
	props, err := content.VisiblePropertyLinks(r.Context(), sc, maxSitemapURLs-len(set.URLs))
	if err != nil {
		return err
	}
	for _, p := range props {
		add(propertyPath(p.Slug), p.UpdatedAt)
	}
	var buf bytes.Buffer
	buf.WriteString(xml.Header)
	if err := xml.NewEncoder(&buf).Encode(set); err != nil {
		return fmt.Errorf("writing the sitemap: %w", err)
	}
	writeText(w, "application/xml; charset=utf-8", "public, max-age=600", buf.Bytes())
	return nil
}

// writeText answers 200 with body, of type contentType, cached as said.
func writeText(w http.ResponseWriter, contentType, cacheControl string, body []byte) {
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("Cache-Control", cacheControl)
	_, _ = w.Write(body)
}

// ---- descriptions and link previews ----

// metaDescriptionLen is about what search results show of a description.
const metaDescriptionLen = 160

// pageMeta is what a public page says of itself in its head: the
// description search results show, and the Open Graph tags a shared link's
// preview is made of. Handlers give what they know (Description, Image as
// a path on the site, Type, URL when the request's path is not the page's);
// publicMeta fills in the rest.
type pageMeta struct {
	Title       string
	Description string
	Type        string // og:type; "website" unless the page says otherwise
	URL         string // the page's absolute address, without its query; handlers may give its path
	Image       string // the absolute address of a photo; "" for none
	SiteName    string
	NoIndex     bool // error pages: not for search engines
}

// publicMeta completes m (which may be nil) for the page of r titled title
// on the site of c: a page without a description of its own gets the
// site's.
func publicMeta(r *http.Request, c *chrome, title string, m *pageMeta) *pageMeta {
	var out pageMeta
	if m != nil {
		out = *m
	}
	out.SiteName = c.Name
	out.Title = cmp.Or(out.Title, title, c.Name)
	out.Description = metaText(cmp.Or(metaText(out.Description), siteDescription(c)))
	out.Type = cmp.Or(out.Type, "website")
	out.URL = absoluteURL(r, cmp.Or(out.URL, r.URL.EscapedPath()))
	if out.Image != "" {
		out.Image = absoluteURL(r, out.Image)
	}
	return &out
}

// siteDescription describes the site as a whole, from its agency's details.
func siteDescription(c *chrome) string {
	d := "Homes for sale and to rent from " + cmp.Or(c.Agency.Name, c.Name)
	if c.Agency.Address != "" {
		d += ", " + c.Agency.Address
	}
	return d + "."
}

// metaText is s on one line, cut at a word to at most metaDescriptionLen
// characters.
func metaText(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	r := []rune(s)
	if len(r) <= metaDescriptionLen {
		return s
	}
	cut := string(r[:metaDescriptionLen-1])
	if i := strings.LastIndexByte(cut, ' '); i > len(cut)/2 {
		cut = cut[:i]
	}
	return strings.TrimRight(cut, " ,.;:-") + "…"
}

func photoPath(id uuid.UUID) string { return "/photos/" + id.String() }

// propertyPath is the address of a property's page.
func propertyPath(slug string) string { return "/properties/" + url.PathEscape(slug) }

// firstCover is the path of the first cover photo among props, or "".
func firstCover(props []content.Property) string {
	for _, p := range props {
		if p.CoverPhotoID != nil {
			return photoPath(*p.CoverPhotoID)
		}
	}
	return ""
}

// propertyMeta describes a property's page: its description, or a summary
// when it has none, and its first photo.
func propertyMeta(p content.Property) *pageMeta {
	// Its address, also on the answer to its enquiry form.
	m := &pageMeta{Type: "article", Description: p.Description, URL: propertyPath(p.Slug)}
	if strings.TrimSpace(p.Description) == "" {
		where := ""
		if p.City != "" {
			where = " in " + p.City
		}
		m.Description = fmt.Sprintf("%s%s: %d bedroom%s, %d bathroom%s.",
			listingLabel(p), where, p.Bedrooms, plural(p.Bedrooms), p.Bathrooms, plural(p.Bathrooms))
	}
	if len(p.Photos) > 0 {
		m.Image = photoPath(p.Photos[0].ID)
	}
	return m
}

// pageMetaOf describes a published page by the start of its text.
func pageMetaOf(p content.Page) *pageMeta {
	return &pageMeta{Type: "article", Description: cmp.Or(strings.TrimSpace(p.Body), p.Title)}
}

// searchMeta describes a search's page by what it found.
func searchMeta(r *http.Request, title string, res content.Results) *pageMeta {
	noun := "properties"
	if res.Total == 1 {
		noun = "property"
	}
	return &pageMeta{Description: fmt.Sprintf("%s from %s: %s %s.", title, siteFrom(r.Context()).Website.Name, units.Count(int64(res.Total)), noun)}
}
