// Verify a token the way a Go backend using golang-jwt v4 would.
// stdin: {"token", "secret", "alg": "HS256"|"HS512", "kind": "reqio"|"reditus", "audience"?}
// stdout: one JSON line {"ok": true, "claims", "header"} or {"ok": false, "error"};
// exit 0 accepted, 1 rejected, 2 usage error.
//
// RegisteredClaims.Subject and UserId are Go strings: a numeric user id fails to unmarshal,
// which is the point (the tokens must carry it as a string).
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/golang-jwt/jwt/v4"
)

type request struct {
	Token    string `json:"token"`
	Secret   string `json:"secret"`
	Alg      string `json:"alg"`
	Kind     string `json:"kind"`
	Audience string `json:"audience"`
}

type reqioClaims struct {
	Email  string         `json:"email,omitempty"`
	Traits map[string]any `json:"traits,omitempty"`
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

func main() {
	var req request
	if err := json.NewDecoder(os.Stdin).Decode(&req); err != nil {
		finish(map[string]any{"ok": false, "error": "bad request: " + err.Error()}, 2)
	}
	key := func(*jwt.Token) (any, error) { return []byte(req.Secret), nil }

	if req.Kind == "reditus" {
		var claims reditusClaims
		tok, err := jwt.ParseWithClaims(req.Token, &claims, key, jwt.WithValidMethods([]string{"HS512"}))
		if err == nil && (claims.ProductId == "" || claims.UserId == "" || claims.IssuedAt == nil) {
			err = errors.New("ProductId, UserId and iat are required")
		}
		if err != nil {
			finish(map[string]any{"ok": false, "error": err.Error()}, 1)
		}
		finish(map[string]any{"ok": true, "header": tok.Header, "claims": map[string]any{
			"ProductId": claims.ProductId, "UserId": claims.UserId, "iat": claims.IssuedAt.Unix(),
		}}, 0)
	}

	var claims reqioClaims
	tok, err := jwt.ParseWithClaims(req.Token, &claims, key, jwt.WithValidMethods([]string{req.Alg}))
	if err == nil && !claims.VerifyAudience(req.Audience, true) {
		err = errors.New("token has an invalid audience")
	}
	// v4 checks exp only when present; the Reqio token must have one.
	if err == nil && (!claims.VerifyExpiresAt(time.Now(), true) || claims.IssuedAt == nil) {
		err = errors.New("exp and iat are required and exp must be in the future")
	}
	if err == nil && claims.Subject == "" {
		err = errors.New("sub is required")
	}
	if err != nil {
		finish(map[string]any{"ok": false, "error": err.Error()}, 1)
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
