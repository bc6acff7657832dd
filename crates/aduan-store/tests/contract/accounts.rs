//! Checkpoints, users, API keys, sessions, the audit log.

use aduan_core::Actor;
use aduan_store::{Scope, StoreError, StoreOptions};
use chrono::Duration;

use crate::stores;

#[tokio::test]
async fn checkpoints_users_and_keys() {
    for (store, _g) in stores(StoreOptions::default()).await {
        store.ping().await.unwrap();
        assert_eq!(store.checkpoint("email", "uid").await.unwrap(), None);
        store.set_checkpoint("email".into(), "uid".into(), "41".into()).await.unwrap();
        store.set_checkpoint("email".into(), "uid".into(), "42".into()).await.unwrap();
        assert_eq!(store.checkpoint("email", "uid").await.unwrap().as_deref(), Some("42"));

        let user = aduan_store::NewUser {
            email: "Kepala.DPU@banyumaskab.go.id".into(),
            name: None,
            role: aduan_store::Role::Official,
            opd: Some("DPU".into()),
            password_hash: "$argon2id$…".into(),
        };
        store.add_user(user.clone()).await.unwrap();
        assert!(matches!(store.add_user(user).await, Err(StoreError::Conflict(_))));

        store.add_api_key("app".into(), Scope::Intake, "h1".into()).await.unwrap();
        let key = store.api_key_by_hash("h1").await.unwrap().unwrap();
        assert_eq!((key.name.as_str(), key.scope, key.revoked), ("app", Scope::Intake, false));
        assert_eq!(store.api_key_by_hash("h2").await.unwrap(), None);
        let admin = aduan_core::Actor::User("admin@kab.go.id".into());
        let revoked = store.revoke_api_key(key.id, admin.clone()).await.unwrap().unwrap();
        assert!(revoked.revoked && revoked.name == "app");
        assert!(store.api_key_by_hash("h1").await.unwrap().unwrap().revoked);
        assert_eq!(store.revoke_api_key(key.id + 1000, admin).await.unwrap(), None);
    }
}

#[tokio::test]
async fn sessions_live_until_expiry_logout_or_disabling_and_are_audited() {
    use aduan_store::{NewUser, Role};
    for (store, _g) in stores(StoreOptions::default()).await {
        let admin = Actor::User("admin@banyumaskab.go.id".into());
        let new = NewUser {
            email: "Op@Banyumaskab.go.id".into(),
            name: Some("Op".into()),
            role: Role::Operator,
            opd: None,
            password_hash: "$argon2id$v=19$x".into(),
        };
        let id = store.add_user_by(new, admin.clone()).await.unwrap();
        let (user, hash) = store.user_for_login(" OP@banyumaskab.go.id ").await.unwrap().unwrap();
        assert_eq!((user.id, user.role, hash.as_str()), (id, Role::Operator, "$argon2id$v=19$x"));
        assert_eq!(store.user_for_login("nobody@x.id").await.unwrap(), None);

        store
            .create_session("h-live".into(), id, "csrf1".into(), Duration::hours(1))
            .await
            .unwrap();
        store
            .create_session("h-old".into(), id, "csrf2".into(), Duration::hours(-1))
            .await
            .unwrap();
        let s = store.session("h-live").await.unwrap().unwrap();
        assert_eq!(
            (s.user.email.as_str(), s.csrf_token.as_str()),
            ("op@banyumaskab.go.id", "csrf1")
        );
        assert_eq!(store.session("h-old").await.unwrap(), None, "expired");
        assert_eq!(store.session("nope").await.unwrap(), None);

        assert!(store.delete_session("h-live".into()).await.unwrap());
        assert!(!store.delete_session("h-live".into()).await.unwrap());
        assert_eq!(store.session("h-live").await.unwrap(), None);

        store.create_session("h-2".into(), id, "c".into(), Duration::hours(1)).await.unwrap();
        store.set_user_disabled(id, true, admin.clone()).await.unwrap();
        assert_eq!(store.session("h-2").await.unwrap(), None, "disabling ends sessions");
        assert!(matches!(
            store.create_session("h-3".into(), id, "c".into(), Duration::hours(1)).await,
            Err(StoreError::Invalid(_))
        ));
        store.set_user_disabled(id, false, admin.clone()).await.unwrap();
        assert_eq!(store.users().await.unwrap().len(), 1);

        let log = store.audit_log(50).await.unwrap();
        let actions: Vec<(String, String)> =
            log.iter().map(|e| (e.actor.to_string(), e.action.clone())).collect();
        let op = "user:op@banyumaskab.go.id".to_string();
        let ad = "user:admin@banyumaskab.go.id".to_string();
        assert_eq!(
            actions,
            vec![
                (ad.clone(), "user_enabled".into()),
                (ad.clone(), "user_disabled".into()),
                (op.clone(), "login".into()),
                (op.clone(), "logout".into()),
                (op.clone(), "login".into()),
                (op.clone(), "login".into()),
                (ad, "user_added".into()),
            ]
        );
    }
}

// --- inbox: canned answers ---

#[tokio::test]
async fn canned_answers_are_added_changed_deleted_and_audited() {
    for (store, _g) in stores(StoreOptions::default()).await {
        let admin = Actor::User("admin@banyumaskab.go.id".into());
        assert!(store.canned_answers().await.unwrap().is_empty());
        let jalan = store
            .save_canned_answer(
                None,
                "Diteruskan".into(),
                "Yth. {nama}, aduan {kode} diteruskan ke {opd}.".into(),
                Some("jalan".into()),
                admin.clone(),
            )
            .await
            .unwrap()
            .unwrap();
        let global = store
            .save_canned_answer(
                None,
                "Terima kasih".into(),
                "Terima kasih.".into(),
                None,
                admin.clone(),
            )
            .await
            .unwrap()
            .unwrap();
        let all = store.canned_answers().await.unwrap();
        assert_eq!(
            all.iter().map(|a| a.id).collect::<Vec<_>>(),
            vec![global, jalan],
            "global first"
        );
        assert_eq!(all[1].category.as_deref(), Some("jalan"));

        let changed = store
            .save_canned_answer(
                Some(jalan),
                "Diteruskan ke OPD".into(),
                "Baru.".into(),
                None,
                admin.clone(),
            )
            .await
            .unwrap();
        assert_eq!(changed, Some(jalan));
        let a = store.canned_answer(jalan).await.unwrap().unwrap();
        assert_eq!(
            (a.title.as_str(), a.body.as_str(), a.category),
            ("Diteruskan ke OPD", "Baru.", None)
        );
        assert_eq!(
            store
                .save_canned_answer(Some(9999), "x".into(), "y".into(), None, admin.clone())
                .await
                .unwrap(),
            None,
            "changing a missing one changes nothing"
        );

        assert!(store.delete_canned_answer(global, admin.clone()).await.unwrap());
        assert!(!store.delete_canned_answer(global, admin.clone()).await.unwrap());
        assert_eq!(store.canned_answers().await.unwrap().len(), 1);

        let log = store.audit_log(10).await.unwrap();
        let actions: Vec<(&str, Option<&str>)> =
            log.iter().map(|e| (e.action.as_str(), e.target.as_deref())).collect();
        let (j, g) = (jalan.to_string(), global.to_string());
        assert_eq!(
            actions,
            vec![
                ("canned_answer_deleted", Some(g.as_str())),
                ("canned_answer_changed", Some(j.as_str())),
                ("canned_answer_added", Some(g.as_str())),
                ("canned_answer_added", Some(j.as_str())),
            ]
        );
    }
}
