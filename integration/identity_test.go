package integration

import (
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"
)

func TestUserFrom(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		token string // configured
		send  string // MS-ASPNETCORE-TOKEN sent
		want  *User
	}{
		{"trusted with the token", "tok", "tok", &User{Name: "jürgen@EXAMPLE.COM", AuthType: "Negotiate", Groups: []string{"S-1-5-21-1-2-3-513", "a,b"}, GroupSIDs: []string{"S-1-5-21-1-2-3-513", "S-1-1-0"}}},
		{"no token configured: never trusted", "", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var got *User
			var left http.Header
			m := &Middleware{Config: Config{Token: tt.token}, Next: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				got, left = UserFrom(r), r.Header
			})}
			r := httptest.NewRequest("GET", "/", nil)
			r.Header.Set(HeaderToken, tt.send)
			r.Header.Set(HeaderUser, "j%C3%BCrgen@EXAMPLE.COM")
			r.Header.Set(HeaderAuthType, "Negotiate")
			r.Header.Set(HeaderGroups, "S-1-5-21-1-2-3-513,a%2Cb")
			r.Header.Set(HeaderGroupSIDs, "S-1-5-21-1-2-3-513,S-1-1-0")
			m.ServeHTTP(httptest.NewRecorder(), r)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("UserFrom = %+v, want %+v", got, tt.want)
			}
			for _, h := range []string{HeaderUser, HeaderAuthType, HeaderGroups, HeaderGroupSIDs} {
				if v := left.Get(h); v != "" {
					t.Errorf("%s = %q reached the handler", h, v)
				}
			}
			if got.InGroup("A,B") != (tt.want != nil) {
				t.Errorf("InGroup(A,B) = %v", got.InGroup("A,B"))
			}
		})
	}
}
