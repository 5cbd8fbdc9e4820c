from django.contrib.auth import views as auth_views
from django.urls import path

from . import views

app_name = "accounts"
urlpatterns = [
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("account/", views.account, name="account"),
    path("account/tokens/<int:pk>/revoke/", views.token_revoke, name="token-revoke"),
    path("teams/", views.team_list, name="team-list"),
    path("teams/<slug:slug>/", views.team_detail, name="team-detail"),
    path("teams/<slug:slug>/members/", views.team_member_add, name="team-member-add"),
    path("teams/<slug:slug>/members/<str:username>/remove/", views.team_member_remove, name="team-member-remove"),
    path("teams/<slug:slug>/roles/<str:role>/", views.team_role, name="team-role"),
]
