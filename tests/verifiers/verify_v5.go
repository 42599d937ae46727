// Verify a token the way the Go seed's backend would: golang-jwt v5, which is stricter than v4
// about claim types. The same stdin/stdout protocol as verify.go:
// stdin: {"token", "secret", "alg": "HS256"|"HS512", "kind": "reqio"|"reditus", "audience"?}
// stdout: one JSON line {"ok": true, "claims", "header"} or {"ok": false, "error"};
// exit 0 accepted, 1 rejected, 2 usage error.
//
// A token is accepted only when both of v5's ways of reading it accept it:
//   - the seed's own struct (jwt.RegisteredClaims embedded), decoded by encoding/json:
//     sub must be a string, aud a string or an array of strings, iat and exp numbers;
//   - jwt.MapClaims, whose getters (GetSubject, GetAudience, GetIssuedAt,
//     GetExpirationTime) return ErrInvalidType for any other JSON type.
//
// The validator runs with the options a careful v5 backend sets: the expected audience, exp
// required, iat checked (not in the future), and only the expected algorithm.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/golang-jwt/jwt/v5"
)

type request struct {
	Token    string `json:"token"`
	Secret   string `json:"secret"`
	Alg      string `json:"alg"`
	Kind     string `json:"kind"`
	Audience string `json:"audience"`
}

// The seed's struct (shared/seeds/reqio-go.txt), field for field.
type reqioClaims struct {
	Email  string         `json:"email"`
	Traits map[string]any `json:"traits"`
	jwt.RegisteredClaims
}

type reditusClaims struct {
	ProductId string `json:"ProductId"`
	UserId    string `json:"UserId"`
	jwt.RegisteredClaims
}

func finish(result map[string]any, code int) {
	out, _ := json.Marshal(result)
	fmt.Println(string(out))
	os.Exit(code)
}

func reject(err error) {
	finish(map[string]any{"ok": false, "error": err.Error()}, 1)
}

// mapTypes reads the registered claims through v5's MapClaims getters, which check each
// claim's JSON type; required claims must also be present.
func mapTypes(claims jwt.MapClaims, required ...string) error {
	for _, name := range required {
		if _, ok := claims[name]; !ok {
			return fmt.Errorf("claim %s is required", name)
		}
	}
	if _, err := claims.GetSubject(); err != nil {
		return err
	}
	if _, err := claims.GetAudience(); err != nil {
		return err
	}
	// v5.2.2 reads an aud of another JSON type (a number, an object) as no audience; newer
	// v5 releases reject it as ErrInvalidType, as the struct decoding here always does.
	switch claims["aud"].(type) {
	case nil, string, []any:
	default:
		return fmt.Errorf("%w: aud is invalid", jwt.ErrInvalidType)
	}
	if _, err := claims.GetIssuedAt(); err != nil {
		return err
	}
	if _, err := claims.GetExpirationTime(); err != nil {
		return err
	}
	_, err := claims.GetNotBefore()
	return err
}

func main() {
	var req request
	if err := json.NewDecoder(os.Stdin).Decode(&req); err != nil {
		finish(map[string]any{"ok": false, "error": "bad request: " + err.Error()}, 2)
	}
	key := func(*jwt.Token) (any, error) { return []byte(req.Secret), nil }

	if req.Kind == "reditus" {
		options := []jwt.ParserOption{jwt.WithValidMethods([]string{"HS512"}), jwt.WithIssuedAt()}
		var claims reditusClaims
		tok, err := jwt.ParseWithClaims(req.Token, &claims, key, options...)
		if err == nil && (claims.ProductId == "" || claims.UserId == "" || claims.IssuedAt == nil) {
			err = errors.New("ProductId, UserId and iat are required")
		}
		if err == nil {
			var loose jwt.MapClaims
			if _, err = jwt.ParseWithClaims(req.Token, &loose, key, options...); err == nil {
				err = mapTypes(loose, "iat")
			}
		}
		if err != nil {
			reject(err)
		}
		finish(map[string]any{"ok": true, "header": tok.Header, "claims": map[string]any{
			"ProductId": claims.ProductId, "UserId": claims.UserId, "iat": claims.IssuedAt.Unix(),
		}}, 0)
	}

	options := []jwt.ParserOption{
		jwt.WithValidMethods([]string{req.Alg}),
		jwt.WithAudience(req.Audience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
	}
	var claims reqioClaims
	tok, err := jwt.ParseWithClaims(req.Token, &claims, key, options...)
	if err == nil && (claims.Subject == "" || claims.IssuedAt == nil) {
		err = errors.New("sub and iat are required")
	}
	if err == nil {
		var loose jwt.MapClaims
		if _, err = jwt.ParseWithClaims(req.Token, &loose, key, options...); err == nil {
			err = mapTypes(loose, "sub", "aud", "iat", "exp")
		}
	}
	if err != nil {
		reject(err)
	}
	out := map[string]any{
		"sub": claims.Subject, "aud": []string(claims.Audience),
		"iat": claims.IssuedAt.Unix(), "exp": claims.ExpiresAt.Unix(),
	}
	if claims.Email != "" {
		out["email"] = claims.Email
	}
	if claims.Traits != nil {
		out["traits"] = claims.Traits
	}
	finish(map[string]any{"ok": true, "header": tok.Header, "claims": out}, 0)
}
